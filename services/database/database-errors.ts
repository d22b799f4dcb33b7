/**
 * A database that cannot answer now (refused or dropped connection, no answer within the
 * statement or connect timeout, a server shutting down or out of connections). Its message never
 * names the server's address or credentials: it is safe to show callers, who get UNAVAILABLE.
 * The original error is the `cause`, for the logs.
 */
export class DatabaseUnavailableError extends Error {
  override readonly name = "DatabaseUnavailableError";
}

/** Returns whether `err` is a {@link DatabaseUnavailableError}. */
export function isDatabaseUnavailableError(err: unknown): err is DatabaseUnavailableError {
  return err instanceof DatabaseUnavailableError;
}

const SOCKET_CODES: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  EPIPE: "connection reset",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host lookup failed",
};

// SQLSTATEs a retry may fix: connection exceptions (class 08), shutdown or start-up in progress,
// too many connections, and a statement cancelled by statement_timeout.
const RETRYABLE_SQLSTATE = /^(08...|57P0[123]|53300|57014)$/;

/**
 * Why `err` from the `pg` driver means the database is unavailable, in words without addresses;
 * undefined for other errors (bad SQL, constraint violations: those are bugs or caller errors).
 * `timeouts` names the settings in the message.
 */
export function unavailableReason(
  err: unknown,
  timeouts: { statementMs: number; connectMs: number },
): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const { code, message } = err as { code?: unknown; message?: unknown };
  // Node reports a refused connection to a host with several addresses as an AggregateError.
  const nested = (err as { errors?: unknown }).errors;
  const codes = [code, ...(Array.isArray(nested) ? nested.map((e) => e?.code) : [])];
  for (const c of codes) {
    if (typeof c === "string" && SOCKET_CODES[c]) return SOCKET_CODES[c];
  }
  if (typeof code === "string" && RETRYABLE_SQLSTATE.test(code)) {
    return code === "57014"
      ? `no answer within ${timeouts.statementMs} ms (VOXGATE_DATABASE_STATEMENT_TIMEOUT_MS)`
      : `server error ${code}`;
  }
  const text = typeof message === "string" ? message : "";
  if (/Query read timeout/i.test(text)) {
    return `no answer within ${timeouts.statementMs} ms (VOXGATE_DATABASE_STATEMENT_TIMEOUT_MS)`;
  }
  if (
    /timeout exceeded when trying to connect|Connection terminated due to connection timeout/i.test(
      text,
    )
  ) {
    return `no connection within ${timeouts.connectMs} ms (VOXGATE_DATABASE_CONNECT_TIMEOUT_MS)`;
  }
  if (/Connection terminated|connection error|Client was closed|not queryable/i.test(text)) {
    return "connection lost";
  }
  return undefined;
}
