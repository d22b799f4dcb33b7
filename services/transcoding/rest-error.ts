import { create, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { kRetryAfterHeader } from "../admission/admission-queue.js";
import {
  DISCARD_LIMIT_BYTES,
  discardBody,
  type NodeRequest,
  type NodeResponse,
} from "../auth/rpc-error-response.js";

/**
 * HTTP status for each RPC code, as grpc-gateway (`runtime.HTTPStatusFromCode`) and Envoy's
 * gRPC-JSON transcoder map them.
 */
const HTTP_STATUS: Record<Code, number> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

/** The HTTP status grpc-gateway and Envoy answer `code` with. */
export function httpStatusOfCode(code: Code): number {
  return HTTP_STATUS[code] ?? 500;
}

/**
 * `error` as the JSON of a `google.rpc.Status`, the REST error body of grpc-gateway and Envoy:
 * `{"code": 5, "message": "…", "details": [{"@type": "type.googleapis.com/…", …}]}`.
 */
export function restErrorJson(error: ConnectError): JsonObject {
  const details: JsonValue[] = [];
  for (const detail of error.details) {
    if ("desc" in detail) {
      const json = toJson(detail.desc, create(detail.desc, detail.value));
      const fields = typeof json === "object" && json !== null && !Array.isArray(json) ? json : {};
      details.push({ "@type": `type.googleapis.com/${detail.desc.typeName}`, ...fields });
    } else {
      details.push({
        "@type": `type.googleapis.com/${detail.type}`,
        value: Buffer.from(detail.value).toString("base64"),
      });
    }
  }
  return { code: error.code, message: error.rawMessage, details };
}

/** Options of {@link writeRestError}. */
export interface WriteRestErrorOptions {
  /** HTTP status to use instead of the code's (413 for an oversized body). */
  status?: number;
  /** Extra response headers (`allow` on a 405). */
  headers?: Record<string, string>;
}

/**
 * Answers a REST request with `err` (anything; non-Connect errors become INTERNAL without their
 * message) as a `google.rpc.Status` JSON body. When the request body was not read, an HTTP/1.1
 * body is drained and dropped up to {@link DISCARD_LIMIT_BYTES} so the client reads the answer
 * instead of a broken pipe; a larger one gets its socket cut.
 */
export function writeRestError(
  req: NodeRequest,
  res: NodeResponse,
  err: unknown,
  options: WriteRestErrorOptions = {},
): void {
  const error =
    err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal);
  if (!req.readableEnded && req.httpVersionMajor === 1) discardBody(req);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(restErrorJson(error));
  const headers: Record<string, string> = {
    ...options.headers,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
  };
  if (error.code === Code.Unauthenticated) headers["www-authenticate"] = 'Bearer realm="voxgate"';
  const retryAfter = error.metadata.get(kRetryAfterHeader);
  if (retryAfter) headers[kRetryAfterHeader] = retryAfter;
  res.writeHead(options.status ?? httpStatusOfCode(error.code), headers);
  res.end(body);
}
