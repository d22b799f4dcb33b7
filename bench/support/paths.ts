/**
 * The ways a benchmark client can fetch N echo bytes, each timed the same way: time to the first
 * audio byte and to the last, from just before the request is sent. Every path checks the length
 * and samples the content of what it got (a full check with `verify`), so a fast wrong answer
 * never counts.
 */
import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { GPUBackendService } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { countEchoMismatches, ECHO_PARAMS, echoByteAt } from "../../services/engines/echo/index.js";
import {
  createWideTransport,
  widenConnectionWindow,
  wideWindowSessionOptions,
} from "./h2-client.js";

/** One timed call. */
export interface CallTiming {
  /** Time to the first audio byte, in ms. */
  firstMs: number;
  /** Time to the last byte, in ms. */
  totalMs: number;
}

/** What to ask for. */
export interface EchoAsk {
  /** Answer size, in bytes. */
  bytes: number;
  /** Engine chunk size, in bytes. @default 16_384 */
  chunkBytes?: number;
  /** Pause after the first chunk, in ms. @default 0 */
  holdMs?: number;
  /** Check every byte, not a sample. @default false */
  verify?: boolean;
  /** Called when the first audio byte arrives. */
  onFirstByte?: () => void;
}

/** A way to fetch echo bytes; `close` releases its connections. */
export interface BenchPath {
  /** Short name used in tables and JSON. */
  readonly name: string;
  /** Makes one call. */
  call(ask: EchoAsk): Promise<CallTiming>;
  /** Releases connections. */
  close(): void;
}

const paramsOf = (ask: EchoAsk): Record<string, string> => ({
  [ECHO_PARAMS.bytes]: String(ask.bytes),
  [ECHO_PARAMS.chunkBytes]: String(ask.chunkBytes ?? 16_384),
  ...(ask.holdMs ? { [ECHO_PARAMS.holdMs]: String(ask.holdMs) } : {}),
});

/** Accumulates received bytes and checks them against the echo pattern. */
class Receiver {
  firstMs = 0;
  received = 0;
  readonly #sent = performance.now();
  readonly #ask: EchoAsk;
  constructor(ask: EchoAsk) {
    this.#ask = ask;
  }
  take(data: Uint8Array): void {
    if (data.byteLength === 0) return;
    if (this.firstMs === 0) {
      this.firstMs = performance.now() - this.#sent;
      this.#ask.onFirstByte?.();
    }
    const bad = this.#ask.verify
      ? countEchoMismatches(data, this.received)
      : Number(data[0] !== echoByteAt(this.received)) +
        Number(data[data.byteLength - 1] !== echoByteAt(this.received + data.byteLength - 1));
    if (bad > 0) throw new Error(`received bytes differ from the echo pattern at ${this.received}`);
    this.received += data.byteLength;
  }
  finish(expected = this.#ask.bytes): CallTiming {
    if (this.received !== expected) {
      throw new Error(`received ${this.received} bytes, expected ${expected}`);
    }
    return { firstMs: this.firstMs, totalMs: performance.now() - this.#sent };
  }
}

/** The gateway's `TtsService.StreamSynthesize` (raw PCM) over gRPC or Connect on h2c. */
export function gatewayPath(
  baseUrl: string,
  token: string,
  protocol: "grpc" | "connect" = "grpc",
  name = "gateway",
): BenchPath {
  const { transport, close } = createWideTransport(baseUrl, protocol, token);
  const client = createClient(TtsService, transport);
  return {
    name,
    async call(ask) {
      const receiver = new Receiver(ask);
      const request = { text: "bench", encoding: AudioEncoding.PCM, params: paramsOf(ask) };
      for await (const chunk of client.streamSynthesize(request, { timeoutMs: 120_000 })) {
        receiver.take(chunk.data);
      }
      return receiver.finish();
    },
    close,
  };
}

/** The agent's `GPUBackendService.Synthesize` served directly (bench role direct-backend). */
export function directPath(baseUrl: string): BenchPath {
  const { transport, close } = createWideTransport(baseUrl, "grpc");
  const client = createClient(GPUBackendService, transport);
  return {
    name: "direct",
    async call(ask) {
      const receiver = new Receiver(ask);
      const request = { text: "bench", params: paramsOf(ask) };
      for await (const piece of client.synthesize(request, { timeoutMs: 120_000 })) {
        if (piece.kind.case === "audio") receiver.take(piece.kind.value);
      }
      return receiver.finish();
    },
    close,
  };
}

/** Raw HTTP/2 from the wire-server role: no RPC framing at all. */
export function wirePath(baseUrl: string): BenchPath {
  let session: http2.ClientHttp2Session | undefined;
  const connect = () => {
    if (session && !session.closed && !session.destroyed) return session;
    const fresh = http2.connect(baseUrl, wideWindowSessionOptions);
    fresh.on("error", () => {});
    fresh.once("connect", () => widenConnectionWindow(fresh));
    session = fresh;
    return fresh;
  };
  return {
    name: "wire",
    async call(ask) {
      const sent = performance.now();
      const stream = connect().request({
        ":path": `/?bytes=${ask.bytes}&chunk=${ask.chunkBytes ?? 16_384}`,
      });
      // The wire server sends a constant byte, not the echo pattern: count, do not check.
      let received = 0;
      let firstMs = 0;
      stream.on("data", (data: Buffer) => {
        if (firstMs === 0) firstMs = performance.now() - sent;
        received += data.byteLength;
      });
      await once(stream, "end");
      const totalMs = performance.now() - sent;
      if (received !== ask.bytes) {
        throw new Error(`wire: received ${received} bytes, expected ${ask.bytes}`);
      }
      return { firstMs, totalMs };
    },
    close: () => session?.close(),
  };
}

/** An HTTP/1.1 POST whose response body is the audio (legacy relay, REST, OpenAI). */
function http1Path(
  name: string,
  url: string,
  headers: Record<string, string>,
  body: (ask: EchoAsk) => string,
  expectedBytes?: (ask: EchoAsk) => number,
): BenchPath {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  return {
    name,
    call(ask) {
      return new Promise((resolve, reject) => {
        const receiver = new Receiver(ask);
        const payload = body(ask);
        const req = http.request(
          url,
          {
            method: "POST",
            agent,
            headers: {
              ...headers,
              "content-type": "application/json",
              "content-length": Buffer.byteLength(payload),
            },
          },
          (res) => {
            if (res.statusCode !== 200) {
              res.resume();
              reject(new Error(`${name}: HTTP ${res.statusCode}`));
              return;
            }
            res.on("data", (data: Buffer) => {
              try {
                receiver.take(data);
              } catch (err) {
                res.destroy(err as Error);
              }
            });
            res.on("end", () => {
              try {
                resolve(receiver.finish(expectedBytes?.(ask)));
              } catch (err) {
                reject(err);
              }
            });
            res.on("error", reject);
          },
        );
        req.on("error", reject);
        req.end(payload);
      });
    },
    close: () => agent.destroy(),
  };
}

/** The legacy relay (bench role legacy-relay): WebSocket + base64 JSON + whole body. */
export function legacyPath(baseUrl: string): BenchPath {
  return http1Path("legacy", `${baseUrl}/tts`, {}, (ask) =>
    JSON.stringify({ bytes: ask.bytes, chunkBytes: ask.chunkBytes ?? 16_384 }),
  );
}

/** The gateway's REST/JSON route `POST /v1/speech:stream` (raw PCM, chunked). */
export function restPath(baseUrl: string, token: string): BenchPath {
  return http1Path(
    "rest",
    `${baseUrl}/v1/speech:stream`,
    { authorization: `Bearer ${token}` },
    (ask) =>
      JSON.stringify({ text: "bench", encoding: "AUDIO_ENCODING_PCM", params: paramsOf(ask) }),
  );
}

/**
 * The gateway's OpenAI-compatible `POST /v1/audio/speech` (`response_format: pcm`). OpenAI's
 * request has no engine params, so the answer is the echo engine's default size (`bytes` must
 * equal it).
 */
export function openAiPath(baseUrl: string, token: string): BenchPath {
  return http1Path(
    "openai",
    `${baseUrl}/v1/audio/speech`,
    { authorization: `Bearer ${token}` },
    () =>
      JSON.stringify({ model: "tts-1", voice: "alloy", input: "bench", response_format: "pcm" }),
  );
}

/** The gateway's Connect `TtsService.StreamSynthesize` over HTTP/1.1, like the REST paths. */
export function connectHttp1Path(baseUrl: string, token: string): BenchPath {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  const transport = createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    nodeOptions: { agent },
    useBinaryFormat: true,
    acceptCompression: [],
    interceptors: [
      (next) => async (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      },
    ],
  });
  const client = createClient(TtsService, transport);
  return {
    name: "connect-h1",
    async call(ask) {
      const receiver = new Receiver(ask);
      const request = { text: "bench", encoding: AudioEncoding.PCM, params: paramsOf(ask) };
      for await (const chunk of client.streamSynthesize(request, { timeoutMs: 120_000 })) {
        receiver.take(chunk.data);
      }
      return receiver.finish();
    },
    close: () => agent.destroy(),
  };
}
