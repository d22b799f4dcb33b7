import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { extractTraceContext, tracer } from "./spans.js";

/**
 * Serves one public HTTP request inside a SERVER span that continues the caller's W3C
 * `traceparent` (Connect, gRPC, gRPC-Web, REST, OpenAI, relay and StoryForge requests alike: they
 * all arrive here), so every span the request causes, down to the agent's engine, joins the
 * caller's trace. The span ends when the response is closed. Off, `handle` runs as it is.
 */
export function traceHttpRequest(
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
  handle: () => void,
): void {
  const parent = extractTraceContext(req.headers);
  const method = req.method ?? "HTTP";
  const span = tracer.startSpan(method, { kind: SpanKind.SERVER }, parent);
  if (!span.isRecording()) {
    handle();
    return;
  }
  const url = req.url ?? "";
  const query = url.indexOf("?");
  span.setAttributes({
    "http.request.method": method,
    "url.path": query < 0 ? url : url.slice(0, query),
    "network.protocol.version": req.httpVersion,
    ...(req.socket?.remoteAddress ? { "client.address": req.socket.remoteAddress } : {}),
  });
  res.once("close", () => {
    span.setAttribute("http.response.status_code", res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
  context.with(trace.setSpan(parent, span), handle);
}
