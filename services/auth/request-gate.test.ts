/**
 * The public port's request gate against real Node HTTP/1.1 and h2c servers on 127.0.0.1: every
 * refusal is checked on the wire (status, headers, body framing) and through real Connect, gRPC
 * and gRPC-Web clients, and the gate must answer without reading a byte of the request body.
 */
import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import type * as net from "node:net";
import { Writable } from "node:stream";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createVoxgateClient,
  type VoxgateClient,
  type VoxgateHttpVersion,
  type VoxgateProtocol,
} from "../../clients/voxgate-client.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/health/v1/health_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { createRequestGate, type GateResult, type RequestGate } from "./request-gate.js";
import type { NodeRequest, NodeResponse } from "./rpc-error-response.js";
import { generateToken, hashToken } from "./token-codec.js";
import { createTokenStore } from "./token-store.js";

const TTS_TOKEN = generateToken();
const VOICES_TOKEN = generateToken();
const AGENT_TOKEN = generateToken();

const tokens = createTokenStore([
  { name: "tts-client", sha256: hashToken(TTS_TOKEN), scopes: ["tts"] },
  { name: "voices-client", sha256: hashToken(VOICES_TOKEN), scopes: ["voices"] },
  { name: "gpu-host", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] },
]);

const MISSING = "missing token: send Authorization: Bearer <token>";
const INVALID = "invalid token";
const AGENT_REFUSED = "agent tokens are accepted on the agent port only, not on the public API";
const NO_TTS_SCOPE = 'token "voices-client" lacks the "tts" scope needed for voxgate.v1.TtsService';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What the test server saw for one request. */
interface Admission {
  path: string;
  result: GateResult | undefined;
  /** Whether anything had started reading the request body when the gate returned. */
  bodyTouched: boolean;
}

/** A gate in front of a real connect-node handler, on a real socket, recording everything. */
interface GateServer {
  url: string;
  port: number;
  admissions: Admission[];
  /** Requests handed on past the gate (the handler's `next`). */
  passed: Admission[];
  logLines: string[];
  close(): Promise<void>;
}

const fakeTts: Partial<ServiceImpl<typeof TtsService>> = {
  synthesize(request) {
    return { contentType: "text/plain", data: new TextEncoder().encode(`clip:${request.text}`) };
  },
  async *streamSynthesize(request) {
    yield { contentType: "text/plain", data: new TextEncoder().encode(`chunk:${request.text}`) };
  },
};

const fakeHealth: Partial<ServiceImpl<typeof Health>> = {
  check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }),
};

async function startGateServer(
  httpVersion: VoxgateHttpVersion,
  serviceOfPath?: (path: string) => string | undefined,
): Promise<GateServer> {
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      logLines.push(String(chunk));
      callback();
    },
  });
  const log = pino({ level: "warn" }, sink);
  const gate: RequestGate = createRequestGate({
    tokens,
    log,
    ...(serviceOfPath ? { serviceOfPath } : {}),
  });
  const next = connectNodeAdapter({
    routes(router) {
      router.service(TtsService, fakeTts);
      router.service(Health, fakeHealth);
    },
  });
  const admissions: Admission[] = [];
  const passed: Admission[] = [];
  const handler = (req: NodeRequest, res: NodeResponse) => {
    const result = gate.admit(req, res);
    const admission: Admission = {
      path: req.url ?? "",
      result,
      bodyTouched: req.readableDidRead || req.readableFlowing !== null,
    };
    admissions.push(admission);
    if (!result) return;
    passed.push(admission);
    next(req, res);
  };
  const connections = new Set<{ destroy(): void }>();
  let server: http.Server | http2.Http2Server;
  if (httpVersion === "2") {
    const h2 = http2.createServer(handler);
    h2.on("session", (session) => {
      connections.add(session);
      session.once("close", () => connections.delete(session));
    });
    server = h2;
  } else {
    const h1 = http.createServer(handler);
    h1.on("connection", (socket) => {
      connections.add(socket);
      socket.once("close", () => connections.delete(socket));
    });
    server = h1;
  }
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    admissions,
    passed,
    logLines,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const connection of connections) connection.destroy();
      }),
  };
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** HTTP/2 only: whether the response HEADERS frame ended the stream (trailers-only). */
  endStreamOnHeaders?: boolean;
  trailers?: Record<string, string | string[] | undefined>;
  /** HTTP/1.1 only: settles when the connection the response came on has closed. */
  socketClosed?: Promise<void>;
}

interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** Body bytes written before waiting for the answer. */
  body?: Uint8Array;
  /** Leave the request body unfinished: the answer must arrive without it. */
  holdBodyOpen?: boolean;
}

/**
 * One HTTP/1.1 request, on a fresh connection unless `agent` is given. Resolves once the whole
 * response arrived; errors after that (a server cutting an unwanted upload) are ignored.
 */
function h1Request(port: number, request: RawRequest, agent?: http.Agent): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      method: request.method ?? "POST",
      path: request.path,
      headers: request.headers ?? {},
      agent: agent ?? false,
    });
    let answered = false;
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("error", reject);
      res.on("end", () => {
        answered = true;
        const socket = req.socket;
        const socketClosed =
          socket === null || socket.destroyed
            ? Promise.resolve()
            : new Promise<void>((done) => socket.once("close", () => done()));
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          socketClosed,
        });
        if (request.holdBodyOpen && !agent) req.destroy();
      });
    });
    if (request.body) req.write(request.body);
    if (!request.holdBodyOpen) req.end();
  });
}

/** One cleartext HTTP/2 request on a fresh session, closed afterwards. */
function h2Request(port: number, request: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request(
      {
        ":method": request.method ?? "POST",
        ":path": request.path,
        ...request.headers,
      },
      { endStream: false },
    );
    let response: RawResponse | undefined;
    const chunks: Buffer[] = [];
    stream.on("response", (headers, flags) => {
      response = {
        status: Number(headers[":status"]),
        headers,
        body: Buffer.alloc(0),
        endStreamOnHeaders: (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0,
      };
    });
    stream.on("trailers", (trailers) => {
      if (response) response.trailers = trailers;
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    // A stream the server ended while our body was still open may close with a (NO_ERROR) reset.
    stream.on("error", () => {});
    stream.on("close", () => {
      session.destroy();
      if (!response)
        return reject(new Error(`stream closed without a response (${stream.rstCode})`));
      resolve({ ...response, body: Buffer.concat(chunks) });
    });
    if (request.body) stream.write(request.body);
    if (!request.holdBodyOpen) stream.end();
  });
}

/** Rejects when `promise` has not settled within `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`not settled within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Decodes the single end-of-stream envelope of a Connect streaming error response. */
function decodeEndStream(body: Buffer): { flags: number; json: unknown } {
  expect(body.length).toBeGreaterThanOrEqual(5);
  const flags = body.readUInt8(0);
  const length = body.readUInt32BE(1);
  expect(body.length).toBe(5 + length);
  return { flags, json: JSON.parse(body.subarray(5).toString("utf8")) };
}

const SYNTHESIZE = "/voxgate.v1.TtsService/Synthesize";
const STREAM_SYNTHESIZE = "/voxgate.v1.TtsService/StreamSynthesize";
const HEALTH_CHECK = "/grpc.health.v1.Health/Check";

let h1: GateServer;
let h2: GateServer;

beforeAll(async () => {
  [h1, h2] = await Promise.all([startGateServer("1.1"), startGateServer("2")]);
});

afterAll(async () => {
  await Promise.all([h1?.close(), h2?.close()]);
});

beforeEach(() => {
  for (const server of [h1, h2]) {
    server.admissions.length = 0;
    server.passed.length = 0;
    server.logLines.length = 0;
  }
});

describe("createRequestGate with real clients", () => {
  const clients: VoxgateClient[] = [];
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });

  const matrix: [string, VoxgateProtocol, VoxgateHttpVersion, "unary" | "stream"][] = [
    ["Connect unary over HTTP/1.1", "connect", "1.1", "unary"],
    ["Connect server stream over HTTP/1.1", "connect", "1.1", "stream"],
    ["Connect unary over HTTP/2", "connect", "2", "unary"],
    ["gRPC unary over HTTP/2", "grpc", "2", "unary"],
    ["gRPC server stream over HTTP/2", "grpc", "2", "stream"],
    ["gRPC-Web unary over HTTP/1.1", "grpc-web", "1.1", "unary"],
    ["gRPC-Web server stream over HTTP/2", "grpc-web", "2", "stream"],
  ];

  const call = async (
    protocol: VoxgateProtocol,
    httpVersion: VoxgateHttpVersion,
    shape: "unary" | "stream",
    token: string | undefined,
  ): Promise<string> => {
    const server = httpVersion === "2" ? h2 : h1;
    const client = createVoxgateClient({
      baseUrl: server.url,
      token,
      protocol,
      httpVersion,
      useBinaryFormat: protocol === "grpc",
      timeoutMs: 10_000,
    });
    clients.push(client);
    if (shape === "unary") {
      const clip = await client.tts.synthesize({ text: "hi" });
      return new TextDecoder().decode(clip.data);
    }
    const parts: string[] = [];
    for await (const chunk of client.tts.streamSynthesize({ text: "hi" })) {
      parts.push(new TextDecoder().decode(chunk.data));
    }
    return parts.join("|");
  };

  const refusal = async (
    protocol: VoxgateProtocol,
    httpVersion: VoxgateHttpVersion,
    shape: "unary" | "stream",
    token: string | undefined,
  ): Promise<ConnectError> => {
    const error = await call(protocol, httpVersion, shape, token).then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    expect(error, "the call should have been refused").toBeDefined();
    const server = httpVersion === "2" ? h2 : h1;
    expect(server.passed).toEqual([]);
    return error as ConnectError;
  };

  describe.each(matrix)("%s", (_name, protocol, httpVersion, shape) => {
    it("refuses a call without a token with UNAUTHENTICATED", async () => {
      const error = await refusal(protocol, httpVersion, shape, undefined);
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe(MISSING);
    });

    it("refuses an unknown token with UNAUTHENTICATED", async () => {
      const error = await refusal(protocol, httpVersion, shape, generateToken());
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe(INVALID);
    });

    it("refuses an agent token on the public side with UNAUTHENTICATED", async () => {
      const error = await refusal(protocol, httpVersion, shape, AGENT_TOKEN);
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe(AGENT_REFUSED);
    });

    it("refuses a token without the service's scope with PERMISSION_DENIED naming the scope", async () => {
      const error = await refusal(protocol, httpVersion, shape, VOICES_TOKEN);
      expect(error.code).toBe(Code.PermissionDenied);
      expect(error.rawMessage).toBe(NO_TTS_SCOPE);
    });

    it("lets a token with the scope through, handing on its principal", async () => {
      const answer = await call(protocol, httpVersion, shape, TTS_TOKEN);
      expect(answer).toBe(shape === "unary" ? "clip:hi" : "chunk:hi");
      const server = httpVersion === "2" ? h2 : h1;
      expect(server.passed).toHaveLength(1);
      expect(server.passed[0]?.result?.principal?.name).toBe("tts-client");
      expect(server.passed[0]?.result?.requestId).toMatch(UUID);
    });
  });

  it.each([
    ["connect", "1.1"],
    ["grpc", "2"],
    ["grpc-web", "1.1"],
  ] as const)(
    "passes grpc.health.v1.Health without a token over %s",
    async (protocol, httpVersion) => {
      const server = httpVersion === "2" ? h2 : h1;
      const client = createVoxgateClient({ baseUrl: server.url, protocol, httpVersion });
      clients.push(client);
      const answer = await client.health.check({ service: "" });
      expect(answer.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      expect(server.passed).toHaveLength(1);
      expect(server.passed[0]?.path).toBe(HEALTH_CHECK);
      expect(server.passed[0]?.result?.principal).toBeUndefined();
    },
  );

  it("never writes the presented token to the refusal log", async () => {
    const wrong = generateToken();
    await refusal("connect", "1.1", "unary", wrong);
    await refusal("connect", "1.1", "unary", VOICES_TOKEN);
    const text = h1.logLines.join("");
    expect(h1.logLines).toHaveLength(2);
    expect(text).toContain('"msg":"request refused"');
    expect(text).toContain('"code":"Unauthenticated"');
    expect(text).toContain('"code":"PermissionDenied"');
    expect(text).not.toContain(wrong);
    expect(text).not.toContain(VOICES_TOKEN);
  });
});

describe("createRequestGate on the wire", () => {
  it("answers Connect unary JSON with HTTP 401 and the JSON error body", async () => {
    const res = await h1Request(h1.port, {
      path: SYNTHESIZE,
      headers: { "content-type": "application/json" },
      body: Buffer.from('{"text":"hi"}'),
    });
    expect(res.status).toBe(401);
    expect(res.headers["content-type"]).toBe("application/json");
    expect(res.headers["www-authenticate"]).toBe('Bearer realm="voxgate"');
    expect(Number(res.headers["content-length"])).toBe(res.body.length);
    expect(JSON.parse(res.body.toString("utf8"))).toEqual({
      code: "unauthenticated",
      message: MISSING,
    });
    expect(h1.passed).toEqual([]);
  });

  it("answers a missing scope with HTTP 403 permission_denied and no auth challenge", async () => {
    const res = await h1Request(h1.port, {
      path: SYNTHESIZE,
      headers: { "content-type": "application/json", authorization: `Bearer ${VOICES_TOKEN}` },
      body: Buffer.from('{"text":"hi"}'),
    });
    expect(res.status).toBe(403);
    expect(res.headers["www-authenticate"]).toBeUndefined();
    expect(JSON.parse(res.body.toString("utf8"))).toEqual({
      code: "permission_denied",
      message: NO_TTS_SCOPE,
    });
  });

  it("answers an invalid token in a Connect GET (query string) with HTTP 401", async () => {
    const res = await h1Request(h1.port, {
      method: "GET",
      path: `${SYNTHESIZE}?connect=v1&encoding=json&message=${encodeURIComponent('{"text":"hi"}')}`,
      headers: { authorization: `Bearer ${generateToken()}` },
    });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body.toString("utf8"))).toEqual({
      code: "unauthenticated",
      message: INVALID,
    });
    expect(h1.passed).toEqual([]);
  });

  it("answers Connect streaming with HTTP 200 and one end-stream envelope carrying the error", async () => {
    const res = await h1Request(h1.port, {
      path: STREAM_SYNTHESIZE,
      headers: {
        "content-type": "application/connect+json",
        authorization: `Bearer ${AGENT_TOKEN}`,
      },
    });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/connect+json");
    const { flags, json } = decodeEndStream(res.body);
    expect(flags).toBe(0b10);
    expect(json).toEqual({ error: { code: "unauthenticated", message: AGENT_REFUSED } });
  });

  it("answers Connect streaming over HTTP/2 the same way, with no connection header", async () => {
    const res = await h2Request(h2.port, {
      path: STREAM_SYNTHESIZE,
      headers: {
        "content-type": "application/connect+proto",
        authorization: `Bearer ${VOICES_TOKEN}`,
      },
    });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/connect+proto");
    expect(res.headers.connection).toBeUndefined();
    const { flags, json } = decodeEndStream(res.body);
    expect(flags).toBe(0b10);
    expect(json).toEqual({ error: { code: "permission_denied", message: NO_TTS_SCOPE } });
  });

  it("answers gRPC over HTTP/2 trailers-only: one HEADERS frame with grpc-status 16 that ends the stream", async () => {
    const res = await h2Request(h2.port, {
      path: SYNTHESIZE,
      headers: { "content-type": "application/grpc+proto", te: "trailers" },
    });
    expect(res.status).toBe(200);
    expect(res.endStreamOnHeaders).toBe(true);
    expect(res.trailers).toBeUndefined();
    expect(res.body.length).toBe(0);
    expect(res.headers["content-type"]).toBe("application/grpc+proto");
    expect(res.headers["grpc-status"]).toBe("16");
    expect(decodeURIComponent(String(res.headers["grpc-message"]))).toBe(MISSING);
    expect(h2.passed).toEqual([]);
  });

  it("answers gRPC PERMISSION_DENIED with grpc-status 7", async () => {
    const res = await h2Request(h2.port, {
      path: SYNTHESIZE,
      headers: { "content-type": "application/grpc", authorization: `Bearer ${VOICES_TOKEN}` },
    });
    expect(res.endStreamOnHeaders).toBe(true);
    expect(res.headers["grpc-status"]).toBe("7");
    expect(decodeURIComponent(String(res.headers["grpc-message"]))).toBe(NO_TTS_SCOPE);
  });

  it("answers gRPC-Web over HTTP/1.1 with grpc-status in the response headers", async () => {
    const res = await h1Request(h1.port, {
      path: SYNTHESIZE,
      headers: { "content-type": "application/grpc-web+proto", authorization: "Basic dTpw" },
    });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/grpc-web+proto");
    expect(res.headers["grpc-status"]).toBe("16");
    expect(decodeURIComponent(String(res.headers["grpc-message"]))).toBe(MISSING);
    expect(res.body.length).toBe(0);
  });

  it("answers gRPC-Web over HTTP/2 trailers-only as well", async () => {
    const res = await h2Request(h2.port, {
      path: SYNTHESIZE,
      headers: {
        "content-type": "application/grpc-web+json",
        authorization: `Bearer ${AGENT_TOKEN}`,
      },
    });
    expect(res.endStreamOnHeaders).toBe(true);
    expect(res.headers["grpc-status"]).toBe("16");
    expect(decodeURIComponent(String(res.headers["grpc-message"]))).toBe(AGENT_REFUSED);
  });

  it("passes an unknown RPC path and a non-RPC path on without a token", async () => {
    const unknown = await h1Request(h1.port, {
      path: "/nope.v1.Nothing/Call",
      headers: { "content-type": "application/json" },
      body: Buffer.from("{}"),
    });
    const metrics = await h1Request(h1.port, { method: "GET", path: "/metrics" });
    // The router behind the gate answers: it knows neither.
    expect(unknown.status).toBe(404);
    expect(metrics.status).toBe(404);
    expect(h1.passed.map((p) => p.path)).toEqual(["/nope.v1.Nothing/Call", "/metrics"]);
    expect(h1.passed.every((p) => p.result?.principal === undefined)).toBe(true);
  });

  it("uses serviceOfPath to guard non-RPC paths such as REST bindings", async () => {
    const rest = await startGateServer("1.1", (path) =>
      path === "/v1/speech:synthesize" ? "voxgate.v1.TtsService" : undefined,
    );
    try {
      const res = await h1Request(rest.port, {
        path: "/v1/speech:synthesize",
        headers: { "content-type": "application/json" },
        body: Buffer.from('{"text":"hi"}'),
      });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body.toString("utf8"))).toEqual({
        code: "unauthenticated",
        message: MISSING,
      });
      expect(rest.passed).toEqual([]);
      // With a custom mapping, the default /package.Service/Method form is no longer consulted.
      const rpc = await h1Request(rest.port, {
        path: SYNTHESIZE,
        headers: { "content-type": "application/json" },
        body: Buffer.from('{"text":"hi"}'),
      });
      expect(rpc.status).toBe(200);
      expect(rest.passed.map((p) => p.path)).toEqual([SYNTHESIZE]);
    } finally {
      await rest.close();
    }
  });
});

describe("createRequestGate before the body", () => {
  const big = Buffer.alloc(4 * 1024 * 1024, 0x61);

  it("refuses an HTTP/1.1 upload before its body: the answer arrives while the body is still open", async () => {
    const agent = new http.Agent({ keepAlive: true });
    try {
      const res = await h1Request(
        h1.port,
        {
          path: SYNTHESIZE,
          headers: { "content-type": "application/json" },
          body: big,
          holdBodyOpen: true,
        },
        agent,
      );
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body.toString("utf8"))).toEqual({
        code: "unauthenticated",
        message: MISSING,
      });
      expect(h1.passed).toEqual([]);
      expect(h1.admissions).toHaveLength(1);
      expect(h1.admissions[0]?.result).toBeUndefined();
      // The gateway does not keep taking an unwanted multi-megabyte upload on that connection.
      await within(res.socketClosed ?? Promise.reject(new Error("no socket")), 5_000);
    } finally {
      agent.destroy();
    }
  });

  it("refuses a finished HTTP/1.1 upload and serves the next request of the same client", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const refused = await h1Request(
        h1.port,
        {
          path: SYNTHESIZE,
          headers: { "content-type": "application/json" },
          body: Buffer.alloc(64 * 1024, 0x20),
        },
        agent,
      );
      expect(refused.status).toBe(401);
      const ok = await h1Request(
        h1.port,
        {
          path: SYNTHESIZE,
          headers: { "content-type": "application/json", authorization: `Bearer ${TTS_TOKEN}` },
          body: Buffer.from('{"text":"next"}'),
        },
        agent,
      );
      expect(ok.status).toBe(200);
      expect(h1.passed.map((p) => p.result?.principal?.name)).toEqual(["tts-client"]);
    } finally {
      agent.destroy();
    }
  });

  it("refuses an HTTP/2 gRPC upload without reading it", async () => {
    const res = await h2Request(h2.port, {
      path: SYNTHESIZE,
      headers: { "content-type": "application/grpc", authorization: `Bearer ${generateToken()}` },
      body: big,
      holdBodyOpen: true,
    });
    expect(res.headers["grpc-status"]).toBe("16");
    expect(decodeURIComponent(String(res.headers["grpc-message"]))).toBe(INVALID);
    expect(h2.passed).toEqual([]);
    expect(h2.admissions).toHaveLength(1);
    expect(h2.admissions[0]?.bodyTouched).toBe(false);
  });

  it("keeps serving new connections after refusing unread uploads", async () => {
    for (let i = 0; i < 3; i++) {
      await h1Request(h1.port, { path: SYNTHESIZE, body: big, holdBodyOpen: true });
    }
    const ok = await h1Request(h1.port, {
      path: SYNTHESIZE,
      headers: { "content-type": "application/json", authorization: `Bearer ${TTS_TOKEN}` },
      body: Buffer.from('{"text":"after"}'),
    });
    expect(ok.status).toBe(200);
    expect(ok.body.toString("utf8")).toContain(Buffer.from("clip:after").toString("base64"));
  });
});

describe("createRequestGate request ids", () => {
  it.each([["abc-123"], ["req.1:2_3"], ["A".repeat(128)]])(
    "echoes the sane x-request-id %j",
    async (id) => {
      const refused = await h1Request(h1.port, {
        path: SYNTHESIZE,
        headers: { "content-type": "application/json", "x-request-id": id },
      });
      expect(refused.status).toBe(401);
      expect(refused.headers["x-request-id"]).toBe(id);

      const admitted = await h2Request(h2.port, {
        path: HEALTH_CHECK,
        headers: { "content-type": "application/grpc", "x-request-id": id },
        body: Buffer.from([0, 0, 0, 0, 0]),
      });
      expect(admitted.headers["x-request-id"]).toBe(id);
      expect(h2.passed[0]?.result?.requestId).toBe(id);
    },
  );

  it.each([
    ["with spaces", "has space"],
    ["too long", "A".repeat(129)],
    ["with other punctuation", "<script>"],
    ["with a slash", "a/b"],
    ["empty", ""],
  ])("replaces an x-request-id %s with a new uuid", async (_case, id) => {
    const res = await h1Request(h1.port, {
      path: SYNTHESIZE,
      headers: { "content-type": "application/json", "x-request-id": id },
    });
    const given = String(res.headers["x-request-id"]);
    expect(given).toMatch(UUID);
    expect(given).not.toBe(id);
    expect(h1.admissions[0]?.result).toBeUndefined();
  });

  it("gives each request without an id a distinct one, the same the handler sees", async () => {
    const a = await h1Request(h1.port, { method: "GET", path: "/metrics" });
    const b = await h1Request(h1.port, { method: "GET", path: "/metrics" });
    expect(a.headers["x-request-id"]).toMatch(UUID);
    expect(a.headers["x-request-id"]).not.toBe(b.headers["x-request-id"]);
    expect(h1.passed.map((p) => p.result?.requestId)).toEqual([
      a.headers["x-request-id"],
      b.headers["x-request-id"],
    ]);
  });
});
