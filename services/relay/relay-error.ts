import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { discardBody, type NodeRequest, type NodeResponse } from "../auth/rpc-error-response.js";

/** The body of a relay error answer: `{"error": …}`, plus voxgate's code and extras. */
export interface RelayErrorBody {
  /** What went wrong, for people (what relay clients read). */
  error: string;
  /** Machine-readable code: the gRPC code name or a relay one (`capability_missing`). */
  code: string;
  /** Further members (e.g. `capability`). */
  [key: string]: unknown;
}

/** An error answered in the relay's shape with an HTTP status. */
export class RelayError extends Error {
  override name = "RelayError";

  constructor(
    message: string,
    /** HTTP status. */
    readonly status: number,
    /** Machine-readable code. */
    readonly code: string,
    /** Further body members. */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }

  /** The JSON body of the answer. */
  toJSON(): RelayErrorBody {
    return { error: this.message, code: this.code, ...this.extra };
  }
}

/** Reports whether `error` is a {@link RelayError}. */
export function isRelayError(error: unknown): error is RelayError {
  return error instanceof RelayError;
}

/** A 400 about the request. */
export function badRequest(message: string): RelayError {
  return new RelayError(message, 400, codeToString(Code.InvalidArgument));
}

/**
 * The HTTP status the relay answered for each failure. It differs from voxgate's REST mapping
 * where relay clients rely on it: no backend that can serve is 503 (also when none offers the
 * capability at all, voxgate's FAILED_PRECONDITION), a backend that failed is 502.
 */
function statusOf(code: Code, message: string): number {
  switch (code) {
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return 400;
    case Code.Unauthenticated:
      return 401;
    case Code.PermissionDenied:
      return 403;
    case Code.NotFound:
      return 404;
    case Code.AlreadyExists:
      return 409;
    case Code.FailedPrecondition:
      // The registry's "no connected backend offers …" means nothing can serve: 503 for relay
      // clients, which retry or warm up on it. Other preconditions are the caller's.
      return /^no connected backend offers /.test(message) ? 503 : 409;
    case Code.ResourceExhausted:
      return /limit is|larger than|exceeds/.test(message) ? 413 : 429;
    case Code.Unavailable:
      // The registry prefixes what the backends it tried did ("backend a failed: …"): one did
      // fail, which the relay reported as 502; with nothing tried, nothing could serve: 503.
      return /^backend \S+ failed/.test(message) ? 502 : 503;
    case Code.DeadlineExceeded:
      return 504;
    case Code.Unimplemented:
      return 501;
    case Code.Canceled:
      return 499;
    default:
      // INTERNAL, UNKNOWN, DATA_LOSS, ABORTED: a backend (or the store) failed.
      return 502;
  }
}

/**
 * Translates any error into a {@link RelayError}: a ConnectError keeps its message; anything else
 * is an internal error whose message is not shown (it may hold details of the gateway).
 */
export function toRelayError(error: unknown): RelayError {
  if (isRelayError(error)) return error;
  const connect = ConnectError.from(error);
  const known = error instanceof ConnectError || connect.code !== Code.Unknown;
  const message = known ? connect.rawMessage : "internal error";
  return new RelayError(message, statusOf(connect.code, message), codeToString(connect.code));
}

/**
 * Answers with `error` in the relay's shape. A request body nobody read (the gate refused the
 * call) is drained on HTTP/1.1 up to the discard limit so the client reads the answer.
 */
export function writeRelayError(req: NodeRequest, res: NodeResponse, error: RelayError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (req.httpVersionMajor === 1 && !req.readableEnded) discardBody(req);
  const body = JSON.stringify(error.toJSON());
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
  };
  if (error.status === 401) headers["www-authenticate"] = 'Bearer realm="voxgate"';
  res.writeHead(error.status, headers);
  res.end(body);
}
