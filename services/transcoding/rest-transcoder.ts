import * as http2 from "node:http2";
import {
  type DescMessage,
  type DescMethodStreaming,
  type DescMethodUnary,
  type DescService,
  type JsonValue,
  type Message,
  toJson,
} from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type Transport } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { HttpBody } from "../../gen/google/api/httpbody_pb.js";
import type { GateResult } from "../auth/request-gate.js";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import { kCallContext } from "../gateway/call-context.js";
import type { HttpFrontend, HttpRoute } from "../gateway/http-frontend.js";
import { buildRequestMessage, type UnknownQueryPolicy } from "./request-mapping.js";
import { restErrorJson, type WriteRestErrorOptions, writeRestError } from "./rest-error.js";
import {
  createRouteTable,
  isHttpBody,
  openApiPath,
  type RestBinding,
  type RouteTable,
} from "./route-table.js";

/** Request header carrying the caller's deadline, in milliseconds. */
export const kTimeoutHeader = "x-voxgate-timeout-ms";

/** Options of {@link createRestTranscoder}. */
export interface RestTranscoderOptions {
  /** Services whose `google.api.http` annotations become routes (methods without one get none). */
  services: readonly DescService[];
  /**
   * How calls reach the implementations: the gateway's in-process transport, so REST calls share
   * auth context, interceptors, limits and logging with Connect/gRPC. A service the transport does
   * not serve still has its routes; they answer what the transport answers (UNIMPLEMENTED).
   */
  transport: Transport;
  /** Root logger. */
  log: Logger;
  /** Largest request body, in bytes; larger ones get 413 without being buffered. */
  maxRequestBytes: number;
  /** Longest deadline a caller may set with {@link kTimeoutHeader}, in ms; longer ones are cut. */
  maxTimeoutMs: number;
  /** What to do with query parameters that name no field. @default "reject" (400) */
  unknownQuery?: UnknownQueryPolicy;
  /** Deepest JSON nesting of a body (setting maxJsonDepth). */
  maxJsonDepth: number;
  /**
   * What to do with a request no annotation matches: `"not-found"` answers a JSON 404 (except for
   * Connect/gRPC paths `/package.Service/Method`, left to the RPC router); `"pass"` leaves it to
   * the next frontend. @default "pass"
   */
  unmatched?: "not-found" | "pass";
}

/** A REST/JSON frontend generated from `google.api.http`; also exposes its route table. */
export interface RestTranscoder extends HttpFrontend {
  /** Every binding, for inspection and tests. */
  readonly table: RouteTable;
}

const CONNECT_PATH = /^\/[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+\/[A-Za-z_]\w*$/;
/** Response headers of an RPC that make no sense on a REST response. */
const RPC_ONLY_HEADER = /^(content-type|content-length|content-encoding|grpc-|connect-)/i;

/**
 * Creates the REST/JSON transcoder: routes from the `google.api.http` annotations of `services`
 * (built once, at start), requests mapped to messages (path, query, body), calls made through the
 * transport, responses as proto3 JSON or, for `google.api.HttpBody`, raw bytes with their content
 * type (chunked when the RPC streams). Server streams of other messages are newline-delimited JSON
 * (`{"result": …}` per line), or server-sent events when the client accepts `text/event-stream`;
 * an error after the first message arrives as the last item (`{"error": …}` or `event: error`),
 * while a raw stream that fails midway is cut, never ended cleanly. Errors are
 * `google.rpc.Status` JSON with grpc-gateway's HTTP status for their code.
 */
export function createRestTranscoder(options: RestTranscoderOptions): RestTranscoder {
  const table = createRouteTable(options.services);
  const log = options.log.child({ component: "rest" });
  const unknownQuery = options.unknownQuery ?? "reject";
  const unmatched = options.unmatched ?? "pass";

  const writeError = (req: NodeRequest, res: NodeResponse, error: ConnectError) =>
    writeRestError(req, res, error);

  const answer = (error: ConnectError, how: WriteRestErrorOptions = {}): HttpRoute => ({
    service: undefined,
    writeError,
    serve(req, res) {
      writeRestError(req, res, error, how);
    },
  });

  return {
    table,
    routes: table.bindings.map((b) => ({ method: b.httpMethod, path: openApiPath(b) })),
    route(req) {
      const url = req.url ?? "/";
      const queryAt = url.indexOf("?");
      const path = queryAt >= 0 ? url.slice(0, queryAt) : url;
      const method = (req.method ?? "GET").toUpperCase();
      const found = table.match(method, path);
      switch (found.kind) {
        case "match": {
          const { binding, bindings } = found;
          return {
            service: binding.method.parent.typeName,
            writeError,
            serve(req, res, gate) {
              const query = new URLSearchParams(queryAt >= 0 ? url.slice(queryAt + 1) : "");
              void serveCall(req, res, gate, binding, { bindings, query });
            },
          };
        }
        case "method-not-allowed":
          return answer(
            new ConnectError(
              `${method} is not allowed on ${path}; use ${found.allow.join(", ")}`,
              Code.Unimplemented,
            ),
            // grpc-gateway's answer: UNIMPLEMENTED in the body, 405 with Allow on the wire.
            { status: 405, headers: { allow: found.allow.join(", ") } },
          );
        case "not-found":
          if (unmatched === "pass" || CONNECT_PATH.test(path)) return undefined;
          return answer(new ConnectError(`no route for ${method} ${path}`, Code.NotFound));
      }
    },
  };

  async function serveCall(
    req: NodeRequest,
    res: NodeResponse,
    gate: GateResult,
    binding: RestBinding,
    parts: { bindings: Map<string, string>; query: URLSearchParams },
  ): Promise<void> {
    const callLog = log.child({ requestId: gate.requestId });
    const abort = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) abort.abort(new ConnectError("client went away", Code.Canceled));
    });
    try {
      const timeoutMs = timeoutOf(req, options.maxTimeoutMs);
      const body = await readBody(req, options.maxRequestBytes);
      if (!body) {
        writeRestError(
          req,
          res,
          new ConnectError(
            `the request body exceeds ${options.maxRequestBytes} bytes ` +
              "(max request bytes: VOXGATE_MAX_REQUEST_BYTES)",
            Code.ResourceExhausted,
          ),
          { status: 413 },
        );
        return;
      }
      const message = buildRequestMessage(binding, {
        ...parts,
        body,
        contentType: String(req.headers["content-type"] ?? ""),
        unknownQuery,
        maxJsonDepth: options.maxJsonDepth,
      });
      const contextValues = createContextValues().set(kCallContext, {
        requestId: gate.requestId,
        principal: gate.principal,
        ...(gate.clientAddress ? { clientAddress: gate.clientAddress } : {}),
        log: options.log.child({ requestId: gate.requestId }),
      });
      const signal = abort.signal;
      const header = forwardedHeaders(req, gate.requestId);
      const method = binding.method;
      if (method.methodKind === "unary") {
        const response = await options.transport.unary(
          method as DescMethodUnary,
          signal,
          timeoutMs,
          header,
          message,
          contextValues,
        );
        writeUnary(res, binding, response.message, response.header);
        return;
      }
      const response = await options.transport.stream(
        method as DescMethodStreaming,
        signal,
        timeoutMs,
        header,
        (async function* () {
          yield message;
        })(),
        contextValues,
      );
      if (method.methodKind === "client_streaming") {
        let last: Message | undefined;
        for await (const m of response.message) last = m;
        if (!last) throw new ConnectError("the service sent no response", Code.Internal);
        writeUnary(res, binding, last, response.header);
        return;
      }
      await writeStream(
        req,
        res,
        binding,
        response.message,
        response.header,
        abort.signal,
        callLog,
      );
    } catch (err) {
      const error = ConnectError.from(err);
      if (error.code === Code.Internal || error.code === Code.Unknown) {
        callLog.error(
          { err: error.cause ?? error, path: binding.template.source },
          "rest call failed",
        );
      }
      if (!res.headersSent && !abort.signal.aborted) writeRestError(req, res, error);
      else res.destroy();
    }
  }
}

/** The deadline the caller asked for in {@link kTimeoutHeader}, cut to `maxTimeoutMs`. */
function timeoutOf(req: NodeRequest, maxTimeoutMs: number): number | undefined {
  const raw = req.headers[kTimeoutHeader];
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? (raw[0] ?? "") : raw;
  if (!/^\d{1,10}$/.test(text) || Number(text) === 0) {
    throw new ConnectError(
      `${kTimeoutHeader} must be a positive whole number of milliseconds, got "${text}"`,
      Code.InvalidArgument,
    );
  }
  return Math.min(Number(text), maxTimeoutMs);
}

/** Request headers an implementation may look at: the request id and the user agent. */
function forwardedHeaders(req: NodeRequest, requestId: string): Headers {
  const headers = new Headers({ "x-request-id": requestId });
  const agent = req.headers["user-agent"];
  if (typeof agent === "string") headers.set("user-agent", agent);
  return headers;
}

/**
 * Reads the whole body, or resolves undefined as soon as it exceeds `maxBytes` (announced by
 * Content-Length or counted while reading) without buffering the rest.
 */
function readBody(req: NodeRequest, maxBytes: number): Promise<Uint8Array | undefined> {
  const announced = Number(req.headers["content-length"] ?? "0");
  if (announced > maxBytes) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > maxBytes) {
        cleanup();
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new ConnectError(`reading the request body failed: ${err.message}`, Code.Canceled));
    };
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onError);
  });
}

function copyHeaders(res: NodeResponse, from: Headers): void {
  from.forEach((value, key) => {
    if (!RPC_ONLY_HEADER.test(key)) res.setHeader(key, value);
  });
}

/** The part of `message` that is the response body: the whole message or its `response_body`. */
function responsePayload(
  binding: RestBinding,
  message: Message,
): { raw: HttpBody } | { json: JsonValue } {
  const output = binding.method.output;
  const field = binding.responseBody;
  if (!field) {
    if (isHttpBody(output)) return { raw: message as HttpBody };
    return { json: toJson(output, message) };
  }
  if (field.fieldKind === "message" && isHttpBody(field.message)) {
    const value = (message as unknown as Record<string, HttpBody | undefined>)[field.localName];
    return { raw: value ?? ({ contentType: "", data: new Uint8Array(0) } as HttpBody) };
  }
  const json = toJson(output, message, { alwaysEmitImplicit: true });
  const value =
    typeof json === "object" && json !== null && !Array.isArray(json) ? json[field.jsonName] : null;
  return { json: value ?? null };
}

function writeUnary(res: NodeResponse, binding: RestBinding, message: Message, header: Headers) {
  copyHeaders(res, header);
  const payload = responsePayload(binding, message);
  const [contentType, body] =
    "raw" in payload
      ? [payload.raw.contentType || "application/octet-stream", payload.raw.data]
      : ["application/json", Buffer.from(JSON.stringify(payload.json))];
  res.writeHead(200, { "content-type": contentType, "content-length": String(body.byteLength) });
  res.end(body);
}

/** Resolves once `res` can take more bytes, or it closed. */
function drained(res: NodeResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

async function write(res: NodeResponse, chunk: Uint8Array | string): Promise<void> {
  if (!(res.write as (c: Uint8Array | string) => boolean).call(res, chunk)) await drained(res);
}

async function writeStream(
  req: NodeRequest,
  res: NodeResponse,
  binding: RestBinding,
  messages: AsyncIterable<Message>,
  header: Headers,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const output: DescMessage = binding.method.output;
  const raw = isHttpBody(output) && !binding.responseBody;
  const sse = !raw && /\btext\/event-stream\b/.test(String(req.headers.accept ?? ""));
  let started = false;
  const start = (contentType: string) => {
    copyHeaders(res, header);
    res.writeHead(200, {
      "content-type": contentType,
      "cache-control": "no-cache",
      // Proxies that buffer (nginx) would hold audio back; each chunk should leave at once.
      "x-accel-buffering": "no",
    });
    started = true;
  };
  try {
    for await (const message of messages) {
      if (signal.aborted) return;
      if (raw) {
        const chunk = message as HttpBody;
        if (!started) start(chunk.contentType || "application/octet-stream");
        if (chunk.data.byteLength > 0) await write(res, chunk.data);
        continue;
      }
      if (!started) start(sse ? "text/event-stream" : "application/x-ndjson");
      const payload = responsePayload(binding, message);
      const json = "json" in payload ? payload.json : null;
      await write(
        res,
        sse ? `data: ${JSON.stringify(json)}\n\n` : `${JSON.stringify({ result: json })}\n`,
      );
    }
    if (!started)
      start(raw ? "application/octet-stream" : sse ? "text/event-stream" : "application/x-ndjson");
    res.end();
  } catch (err) {
    if (!started || signal.aborted) throw err;
    const error = ConnectError.from(err);
    log.warn({ code: Code[error.code], reason: error.rawMessage }, "rest stream failed midway");
    if (raw) {
      // Raw bytes have no place for an error: cut the response so no client mistakes it for
      // whole. On HTTP/1.1 the socket is ended (what was written still arrives) without the
      // final chunk; on HTTP/2 the stream is reset.
      if ("stream" in res) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      else req.socket.end();
      return;
    }
    const status = restErrorJson(error);
    await write(
      res,
      sse
        ? `event: error\ndata: ${JSON.stringify(status)}\n\n`
        : `${JSON.stringify({ error: status })}\n`,
    );
    res.end();
  }
}
