/**
 * CLI errors and the one place that turns any error into a one-line message for people.
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** Exit code of a command that did its job. */
export const EXIT_OK = 0;
/** Exit code of a command that failed (the gateway refused, a file could not be written, …). */
export const EXIT_FAILURE = 1;
/** Exit code of a command called wrongly: unknown command or flag, bad flag value. */
export const EXIT_USAGE = 2;
/** Exit code of a command stopped by SIGINT/SIGTERM (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

/** The command line is wrong; the dispatcher prints the message and a `--help` pointer, exit 2. */
export class CliUsageError extends Error {
  override name = "CliUsageError";
}

/** Reports whether `error` is a {@link CliUsageError}. */
export function isCliUsageError(error: unknown): error is CliUsageError {
  return error instanceof CliUsageError;
}

/**
 * A failure already worded for people (e.g. "cannot write out.wav: permission denied"); the
 * dispatcher prints the message as is, exit 1. Keep the original error as `cause` for
 * `VOXGATE_DEBUG=1`.
 */
export class CliError extends Error {
  override name = "CliError";
}

/** Reports whether `error` is a {@link CliError}. */
export function isCliError(error: unknown): error is CliError {
  return error instanceof CliError;
}

/**
 * Reports whether `error` is a `util.parseArgs` error (unknown option, missing value, unexpected
 * positional), which is a usage error.
 */
export function isParseArgsError(error: unknown): error is Error & { code: string } {
  if (!(error instanceof Error)) return false;
  const code: unknown = (error as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}

/** What {@link describeError} may mention to make a message actionable. */
export interface ErrorContext {
  /** Gateway URL the call went to. */
  baseUrl?: string | undefined;
  /** Token scope the call needs, e.g. `admin`, for PERMISSION_DENIED hints. */
  scope?: string | undefined;
  /** Deadline the call had, in milliseconds, for DEADLINE_EXCEEDED hints. */
  timeoutMs?: number | undefined;
}

/**
 * Turns any error into one line for people, with a hint where one helps: RPC errors by code (the
 * server's own message for INVALID_ARGUMENT and the like), connection failures by their Node cause
 * (ECONNREFUSED, ENOTFOUND), {@link CliError}s as worded, anything else by its message.
 * Never includes a stack trace.
 */
export function describeError(error: unknown, context: ErrorContext = {}): string {
  if (error instanceof ConnectError) return describeConnectError(error, context);
  const unreachable = describeUnreachable(error, context);
  if (unreachable !== undefined) return unreachable;
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

function describeConnectError(error: ConnectError, context: ErrorContext): string {
  const url = context.baseUrl ?? "the configured URL";
  const raw = error.rawMessage || codeName(error.code);
  const dropped = describeDropped(error, context);
  if (dropped !== undefined) return dropped;
  switch (error.code) {
    case Code.Unauthenticated:
      return "the gateway refused the token: set VOXGATE_TOKEN or pass --token";
    case Code.PermissionDenied:
      return context.scope === undefined
        ? `the token is not allowed to do this (${raw}): create one with the scope this call needs (voxgate token create --scopes …)`
        : `the token lacks the "${context.scope}" scope (${raw}): create one with voxgate token create --scopes ${context.scope}`;
    case Code.Unavailable:
      return describeUnreachable(error, context) ?? `the gateway at ${url} is unavailable: ${raw}`;
    case Code.DeadlineExceeded:
      return context.timeoutMs !== undefined && context.timeoutMs > 0
        ? `no answer within ${formatSeconds(context.timeoutMs)}: pass a larger --timeout (seconds)`
        : `the call ran past its deadline: ${raw}`;
    case Code.InvalidArgument:
    case Code.NotFound:
    case Code.AlreadyExists:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
    case Code.Aborted:
      return raw;
    case Code.ResourceExhausted:
      return `the gateway is at capacity (${raw}): try again shortly`;
    case Code.Unimplemented:
      return `the server at ${url} does not offer this call (${raw}): is it a voxgate gateway of this version?`;
    case Code.Canceled:
      return "cancelled";
    default:
      return `the gateway failed (${codeName(error.code)}): ${raw}; set VOXGATE_DEBUG=1 for details`;
  }
}

/** Describes a failure to connect at all, found anywhere in the error's cause chain. */
function describeUnreachable(error: unknown, context: ErrorContext): string | undefined {
  const url = context.baseUrl ?? "the configured URL";
  const codes = nodeErrorCodes(error);
  if (codes.has("ECONNREFUSED")) {
    return `cannot reach the gateway at ${url} — is it running? (npm start)`;
  }
  if (codes.has("ENOTFOUND") || codes.has("EAI_AGAIN")) {
    return `cannot resolve the host of ${url}: check --url or VOXGATE_URL`;
  }
  if (codes.has("ETIMEDOUT") || codes.has("EHOSTUNREACH") || codes.has("ENETUNREACH")) {
    return `cannot reach the gateway at ${url}: the connection timed out or the host is unreachable`;
  }
  return undefined;
}

/**
 * Describes a connection the gateway closed mid-request (EPIPE, ECONNRESET) rather than an RPC
 * error it sent. Over HTTP/1.1 this is what a request refused before its body was read can look
 * like: the refusal is lost when the server closes while the client is still writing.
 */
function describeDropped(error: ConnectError, context: ErrorContext): string | undefined {
  const codes = nodeErrorCodes(error);
  const code = codes.has("EPIPE") ? "EPIPE" : codes.has("ECONNRESET") ? "ECONNRESET" : undefined;
  if (code === undefined) return undefined;
  const url = context.baseUrl ?? "the configured URL";
  return `the gateway at ${url} closed the connection before answering (${code}): often a refused token (check VOXGATE_TOKEN or --token) or a request over its limits`;
}

/**
 * Collects Node error codes (`ECONNREFUSED`, …) from an error, its `cause` chain and the members
 * of AggregateErrors (Node reports a failed dual-stack connect as one).
 */
function nodeErrorCodes(error: unknown): Set<string> {
  const codes = new Set<string>();
  const seen = new Set<unknown>();
  const pending: unknown[] = [error];
  while (pending.length > 0) {
    const next = pending.pop();
    if (!(next instanceof Error) || seen.has(next)) continue;
    seen.add(next);
    const code = (next as { code?: unknown }).code;
    if (typeof code === "string") codes.add(code);
    pending.push(next.cause);
    if (next instanceof AggregateError) pending.push(...next.errors);
  }
  return codes;
}

/** `Code.PermissionDenied` → `permission_denied`, the gRPC/Connect spelling. */
function codeName(code: Code): string {
  const name = Code[code] as string | undefined;
  if (name === undefined) return `code ${code}`;
  return name.replace(/[A-Z]/g, (c, offset: number) => (offset > 0 ? "_" : "") + c.toLowerCase());
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}
