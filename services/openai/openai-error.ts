import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import { kRetryAfterHeader } from "../admission/admission-queue.js";
import {
  DISCARD_LIMIT_BYTES,
  discardBody,
  type NodeRequest,
  type NodeResponse,
} from "../auth/rpc-error-response.js";

/** The body of an OpenAI-style error answer: `{ "error": { message, type, param, code } }`. */
export interface OpenAiErrorBody {
  error: {
    /** What went wrong, for people. */
    message: string;
    /** Error class: `invalid_request_error`, `permission_error`, `rate_limit_error`, `server_error`. */
    type: string;
    /** Request field at fault, when one is. */
    param: string | null;
    /** Machine-readable code: the gRPC code name (`invalid_argument`, `unavailable`, …) or an OpenAI one (`model_not_found`). */
    code: string | null;
  };
}

/** An error answered as an OpenAI error object with an HTTP status. */
export class OpenAiError extends Error {
  override name = "OpenAiError";

  constructor(
    message: string,
    /** HTTP status. */
    readonly status: number,
    /** Request field at fault, or null. */
    readonly param: string | null = null,
    /** Machine-readable code, or null. */
    readonly code: string | null = null,
    /** Error class; by default from the status. */
    readonly type: string = typeOfStatus(status),
    /** Seconds the caller should wait before retrying (`Retry-After`), when known. */
    readonly retryAfterSeconds: number | undefined = undefined,
  ) {
    super(message);
  }

  /** The JSON body of the answer. */
  toJSON(): OpenAiErrorBody {
    return {
      error: {
        message: this.message,
        type: this.type,
        param: this.param,
        code: this.code,
      },
    };
  }
}

/**
 * `Retry-After` of a 429 or 503 answer whose cause does not say how long to wait: short, since a
 * backend that reconnects is routable again within its next heartbeat.
 */
export const DEFAULT_RETRY_AFTER_SECONDS = 1;

/** Reports whether `error` is an {@link OpenAiError}. */
export function isOpenAiError(error: unknown): error is OpenAiError {
  return error instanceof OpenAiError;
}

/** A 400 `invalid_request_error` about request field `param`. */
export function invalidRequest(message: string, param: string | null): OpenAiError {
  return new OpenAiError(message, 400, param, codeToString(Code.InvalidArgument));
}

/**
 * Translates any error into an {@link OpenAiError}: a ConnectError keeps its message and gets the
 * HTTP status Connect uses for its code; anything else is an internal error whose message is not
 * shown (it may hold details of the gateway).
 */
export function toOpenAiError(error: unknown): OpenAiError {
  if (isOpenAiError(error)) return error;
  const connect = ConnectError.from(error);
  const param = connect.code === Code.InvalidArgument ? paramOfMessage(connect.rawMessage) : null;
  const message =
    error instanceof ConnectError || connect.code !== Code.Unknown
      ? connect.rawMessage
      : "internal error";
  const retryAfter = Number(connect.metadata.get(kRetryAfterHeader) ?? Number.NaN);
  return new OpenAiError(
    message,
    codeToHttpStatus(connect.code),
    param,
    codeToString(connect.code),
    typeOfCode(connect.code),
    Number.isFinite(retryAfter) ? retryAfter : undefined,
  );
}

/**
 * Answers with `error` as an OpenAI error object. A request body nobody read yet (the gate refused
 * the call) is read and dropped up to {@link DISCARD_LIMIT_BYTES} on HTTP/1.1, so the client reads
 * the answer instead of a broken pipe; past that the socket is cut.
 */
export function writeOpenAiError(req: NodeRequest, res: NodeResponse, error: OpenAiError): void {
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
  // The openai SDK waits this long before its own retry. A 429 or 503 whose wait is unknown (no
  // backend up yet, a backend restarting) still says one, so clients back off instead of hammering.
  const retryAfter =
    error.retryAfterSeconds ??
    (error.status === 429 || error.status === 503 ? DEFAULT_RETRY_AFTER_SECONDS : undefined);
  if (retryAfter !== undefined) headers[kRetryAfterHeader] = String(retryAfter);
  res.writeHead(error.status, headers);
  res.end(body);
}

// The caller's mistakes are invalid requests; what went wrong on our side (a backend that failed
// mid-stream is ABORTED, HTTP 409) is a server error whatever its status.
function typeOfCode(code: Code): string {
  switch (code) {
    case Code.Canceled:
    case Code.InvalidArgument:
    case Code.NotFound:
    case Code.AlreadyExists:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
    case Code.Unauthenticated:
      return "invalid_request_error";
    case Code.PermissionDenied:
      return "permission_error";
    case Code.ResourceExhausted:
      return "rate_limit_error";
    default:
      return "server_error";
  }
}

function typeOfStatus(status: number): string {
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

// TtsService names the field first ("text is 5001 characters; …", "speed 9 is outside …"); tell
// OpenAI callers which of their fields that is.
function paramOfMessage(message: string): string | null {
  const field = /^([a-z_]+)\b/.exec(message)?.[1];
  switch (field) {
    case "text":
      return "input";
    case "speed":
    case "voice":
    case "instructions":
      return field;
    default:
      return null;
  }
}
