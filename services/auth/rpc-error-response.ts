import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { Code, type ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";

/** Most bytes of an unwanted HTTP/1.1 request body the gateway reads (and drops) to answer it. */
export const DISCARD_LIMIT_BYTES = 1024 * 1024;

/**
 * Reads and drops an unwanted HTTP/1.1 request body (never parsed) so the client gets to read the
 * answer instead of a broken pipe; cuts the socket once more than {@link DISCARD_LIMIT_BYTES} came.
 */
export function discardBody(req: NodeRequest): void {
  let discarded = 0;
  req.on("data", (chunk: Buffer) => {
    discarded += chunk.byteLength;
    if (discarded > DISCARD_LIMIT_BYTES) req.socket.destroy();
  });
  req.resume();
}

/** A Node request on either HTTP version. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;
/** A Node response on either HTTP version. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

/**
 * Answers a request with `error` in the request's own protocol WITHOUT reading its body, so the
 * gateway can refuse before spending anything on an unauthenticated upload:
 * - gRPC and gRPC-Web: HTTP 200 with `grpc-status`/`grpc-message` in a trailers-only response;
 * - Connect streaming: HTTP 200 with an end-of-stream envelope carrying the error;
 * - Connect unary and anything else: the HTTP status for the code and a JSON error body
 *   (`{"code","message"}`, the Connect and REST error shape).
 * On HTTP/1.1 the unread body is discarded (never parsed) up to {@link DISCARD_LIMIT_BYTES}, so
 * the client reads the refusal instead of a broken pipe; a larger upload gets its socket cut.
 */
export function writeRpcError(req: NodeRequest, res: NodeResponse, error: ConnectError): void {
  const contentType = String(req.headers["content-type"] ?? "");
  const message = error.rawMessage;
  const headers: Record<string, string> = {};
  if (req.httpVersionMajor === 1) discardBody(req);
  if (error.code === Code.Unauthenticated) headers["www-authenticate"] = 'Bearer realm="voxgate"';
  // Refusals for load (per-token limits) say when to come back, in every protocol.
  const retryAfter = error.metadata.get("retry-after");
  if (retryAfter) headers["retry-after"] = retryAfter;

  if (/^application\/grpc(-web)?(\+|;|$)/.test(contentType)) {
    const grpcHeaders = {
      ...headers,
      "content-type": contentType,
      "grpc-status": String(error.code),
      "grpc-message": encodeURIComponent(message),
    };
    if ("stream" in res && typeof res.stream?.respond === "function") {
      // A true trailers-only response: one HEADERS frame that ends the stream.
      res.stream.respond({ ":status": 200, ...grpcHeaders }, { endStream: true });
      return;
    }
    res.writeHead(200, grpcHeaders);
    res.end();
    return;
  }

  const errorJson = { code: codeToString(error.code), message };
  if (/^application\/connect\+/.test(contentType)) {
    const payload = Buffer.from(JSON.stringify({ error: errorJson }));
    const envelope = Buffer.alloc(5 + payload.length);
    envelope.writeUInt8(0b10, 0); // end-of-stream flag
    envelope.writeUInt32BE(payload.length, 1);
    payload.copy(envelope, 5);
    res.writeHead(200, { ...headers, "content-type": contentType });
    res.end(envelope);
    return;
  }

  const body = JSON.stringify(errorJson);
  res.writeHead(codeToHttpStatus(error.code), {
    ...headers,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
  });
  res.end(body);
}
