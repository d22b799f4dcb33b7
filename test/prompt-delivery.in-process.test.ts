/**
 * Clone prompt delivery over the agent link, in one process with real parts: the gateway's agent
 * port (real gRPC on 127.0.0.1:0) and registry, real Agents dialling it with a real on-disk prompt
 * cache, the real engine host, and a cloning fake engine that records the prompt bytes it is given.
 * The gateway's prompt store is a recording PromptSource; a hand-written rogue agent checks what
 * the gateway refuses.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { type Logger, pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  AgentService,
  type CallRequest,
  CallRequestSchema,
  type CallResponse,
  type ConnectRequest,
  ConnectRequestSchema,
  type ConnectResponse,
} from "../gen/voxgate/v1/agent_pb.js";
import { BackendState } from "../gen/voxgate/v1/backend_admin_pb.js";
import { Feature } from "../gen/voxgate/v1/capabilities_pb.js";
import {
  type CreateClonePromptRequestSchema,
  type CreateClonePromptResponse,
  SynthesizeRequestSchema,
} from "../gen/voxgate/v1/gpu_backend_pb.js";
import { Agent, agentLinkOptionsFromSettings } from "../services/agent/agent.js";
import { agentSettings } from "../services/agent/agent-settings.js";
import { createPromptCache, type PromptCache } from "../services/agent/prompt-cache.js";
import { type AgentPortServer, createAgentPortServer } from "../services/agent-link/index.js";
import type { PromptSource } from "../services/agent-link/prompt-source.js";
import { hashToken } from "../services/auth/token-codec.js";
import { createTokenStore } from "../services/auth/token-store.js";
import { settingDefaults } from "../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../services/engine-host/engine-host-handler.js";
import { createEngineHost, describeEngines } from "../services/engine-host/index.js";
import { EngineInputError } from "../services/engines/engine-errors.js";
import type {
  EngineAudioChunk,
  EngineCloneRequest,
  EngineSynthesisRequest,
  TtsEngine,
} from "../services/engines/tts-engine.js";
import { gatewaySettings } from "../services/gateway/gateway-settings.js";
import { createGrpcServiceDefinition } from "../services/grpc/service-definition.js";
import { createGatewayMetrics, type GatewayMetrics } from "../services/metrics/gateway-metrics.js";
import { routingOptionsFromSettings } from "../services/registry/backend-registry.js";
import { type BackendRegistry, createBackendRegistry } from "../services/registry/index.js";
import { startTracing, type Tracing } from "../services/tracing/index.js";

/** Routing options a started gateway has by default (its settings' defaults). */
const routing = routingOptionsFromSettings(settingDefaults(gatewaySettings));

const AGENT_TOKEN = "vxg_prompt-delivery-agent-token";
const MODEL = { family: "fake-clone", size: "1b" };
const silent = pino({ level: "silent" });
const CALL_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// Parts

/** A cloning engine that records the prompts and reference audio it is given. */
function createCloningEngine(id = "fake-clone") {
  const synthesized: EngineSynthesisRequest[] = [];
  const cloned: EngineCloneRequest[] = [];
  const engine: TtsEngine = {
    info: {
      id,
      version: "test",
      modelFamily: MODEL.family,
      modelSize: MODEL.size,
      format: { sampleRateHz: 16_000, channels: 1 },
      voices: [{ id: "plain", name: "Plain", languages: ["en"], gender: "" }],
      supportsSpeed: false,
      supportsCloning: true,
    },
    async *synthesize(request): AsyncGenerator<EngineAudioChunk> {
      synthesized.push(request);
      // The audio names the prompt, so a caller can tell which one was used.
      const tag = createHash("sha256")
        .update(request.clonePrompt?.bytes ?? new Uint8Array())
        .digest();
      yield { pcm: new Uint8Array(tag) };
    },
    async createClonePrompt(request) {
      cloned.push(request);
      if (Buffer.from(request.referenceAudio.subarray(0, 3)).toString() === "BAD") {
        throw new EngineInputError(id, "reference audio is silent");
      }
      return { prompt: promptFor(request.referenceAudio), contentType: "application/x-fake" };
    },
    async close() {},
  };
  return { engine, synthesized, cloned };
}

/** The prompt the fake engine makes from a reference: 3 bytes per reference byte, derived. */
function promptFor(reference: Uint8Array): Uint8Array {
  const out = new Uint8Array(reference.byteLength * 3);
  for (let i = 0; i < out.length; i++) out[i] = ((reference[i % reference.length] ?? 0) + i) & 0xff;
  return out;
}

interface StoredPrompt {
  digest: string;
  bytes: Uint8Array;
}

function makePrompt(size: number): StoredPrompt {
  const bytes = new Uint8Array(randomBytes(size));
  return { digest: createHash("sha256").update(bytes).digest("hex"), bytes };
}

/** A PromptSource over a map that counts opens; `tamper` changes what it streams. */
function createRecordingSource(prompts: StoredPrompt[]) {
  const byDigest = new Map(prompts.map((p) => [p.digest, p.bytes]));
  const opens: string[] = [];
  const state = { tamper: undefined as undefined | ((bytes: Uint8Array) => Uint8Array) };
  const source: PromptSource = {
    async open(digest) {
      opens.push(digest);
      const stored = byDigest.get(digest);
      if (!stored) throw new ConnectError(`prompt ${digest} not found`, Code.NotFound);
      const bytes = state.tamper ? state.tamper(stored) : stored;
      return {
        sizeBytes: bytes.byteLength,
        chunks: (async function* () {
          // Store-sized pieces that do not line up with the link's chunks.
          for (let offset = 0; offset < bytes.byteLength; offset += 100_000) {
            yield bytes.subarray(offset, offset + 100_000);
          }
        })(),
      };
    },
  };
  return { source, opens, state, add: (p: StoredPrompt) => byDigest.set(p.digest, p.bytes) };
}

/** A grpc-js interceptor recording every message, header and status the agent receives. */
function createRecorder() {
  const received: unknown[] = [];
  const interceptor: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        next(metadata, {
          onReceiveMetadata(md, nxt) {
            received.push(md.toJSON());
            nxt(md);
          },
          onReceiveMessage(message, nxt) {
            received.push(message);
            nxt(message);
          },
          onReceiveStatus(status, nxt) {
            received.push({
              code: status.code,
              details: status.details,
              md: status.metadata.toJSON(),
            });
            nxt(status);
          },
        });
      },
    });
  /** Everything received as text; bytes as latin1, so strings inside payloads show as written. */
  const text = () =>
    received
      .map((item) =>
        JSON.stringify(item, (_key, value: unknown) =>
          value instanceof Uint8Array
            ? Buffer.from(value).toString("latin1")
            : typeof value === "bigint"
              ? String(value)
              : value,
        ),
      )
      .join("\n");
  return { received, interceptor, text };
}

// ---------------------------------------------------------------------------------------------
// Stack

const cleanups: Array<() => Promise<void>> = [];

// Spans of this file's gateway and agents (one process), kept in memory.
const spans = new InMemorySpanExporter();
let tracing: Tracing | undefined;
beforeAll(async () => {
  tracing = await startTracing(undefined, { exporter: spans, simpleProcessor: true });
});
afterAll(() => tracing?.shutdown());

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  servedBy.length = 0;
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "voxgate-prompt-delivery-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface Gateway {
  registry: BackendRegistry;
  server: AgentPortServer;
  port: number;
}

async function startGateway(
  source: PromptSource | undefined,
  log: Logger = silent,
  observe?: (metrics: GatewayMetrics) => void,
): Promise<Gateway> {
  const registry = createBackendRegistry({ log: silent, ...routing, maxAttempts: 1 });
  const metrics = createGatewayMetrics({ registry, processMetrics: false });
  observe?.(metrics);
  cleanups.push(async () => metrics.close());
  const server = createAgentPortServer({
    host: "127.0.0.1",
    port: 0,
    tokens: createTokenStore([{ name: "gpu", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] }]),
    registry,
    log,
    ...(source ? { promptSource: source } : {}),
    onPromptDelivery: (delivery) => metrics.observePromptDelivery(delivery),
  });
  const port = await server.listen();
  cleanups.push(() => server.close(500));
  return { registry, server, port };
}

interface AgentOptions {
  id: string;
  cache?: PromptCache;
  engine?: TtsEngine;
  maxReferenceBytes?: number;
  interceptors?: grpc.Interceptor[];
}

async function startAgent(gateway: Gateway, options: AgentOptions) {
  const engine = options.engine ?? createCloningEngine().engine;
  const host = createEngineHost({
    ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
    engines: [engine],
    slots: 2,
    ...(options.maxReferenceBytes ? { maxReferenceBytes: options.maxReferenceBytes } : {}),
  });
  const agent = new Agent({
    ...agentLinkOptionsFromSettings(settingDefaults(agentSettings)),
    gatewayAddress: `127.0.0.1:${gateway.port}`,
    token: AGENT_TOKEN,
    agentId: options.id,
    version: "test",
    host,
    capabilities: describeEngines([engine], 2),
    backoff: { initialDelayMs: 50, maxDelayMs: 200 },
    drainTimeoutMs: 5000,
    log: silent,
    ...(options.cache ? { promptCache: options.cache } : {}),
    ...(options.interceptors ? { interceptors: options.interceptors } : {}),
  });
  const run = agent.run();
  const stop = async () => {
    await agent.shutdown();
    await run;
  };
  cleanups.push(stop);
  await waitFor(
    () => gateway.registry.get(options.id)?.state === BackendState.READY,
    `agent ${options.id} to be ready`,
  );
  return { agent, stop };
}

async function openCache(dir: string, maxBytes = 64 * 1024 * 1024): Promise<PromptCache> {
  return createPromptCache({ dir, maxBytes, log: silent });
}

function synthesizeRequest(
  prompt: StoredPrompt,
  extra: { url?: string; model?: typeof MODEL } = {},
) {
  return {
    text: "Say it in my voice.",
    voice: {
      kind: {
        case: "clonePrompt" as const,
        value: {
          digest: prompt.digest,
          sizeBytes: BigInt(prompt.bytes.byteLength),
          model: extra.model ?? MODEL,
          url: extra.url ?? "",
        },
      },
    },
  };
}

/** Backends that served {@link speakWith} calls, in order. */
const servedBy: string[] = [];

/** Speaks through the registry's routing, as the TTS service does; returns the audio bytes. */
async function speakWith(gateway: Gateway, request: ReturnType<typeof synthesizeRequest>) {
  const audio: Uint8Array[] = [];
  for await (const piece of gateway.registry.call(
    {
      feature: Feature.CLONE_PROMPT_SYNTHESIZE,
      modelFamily: MODEL.family,
      modelSize: MODEL.size,
      promptDigest: request.voice.kind.value.digest,
    },
    {
      timeoutMs: CALL_TIMEOUT_MS,
      onFirstItem: (backend) => servedBy.push(backend.id),
    },
    ({ backend, signal, timeoutMs }) =>
      backend.client.synthesize(request, { signal, ...(timeoutMs ? { timeoutMs } : {}) }),
  )) {
    if (piece.kind.case === "audio") audio.push(piece.kind.value);
  }
  return Buffer.concat(audio);
}

/** Calls one agent directly through its registry client, so its own status reaches the test. */
async function speakOn(
  gateway: Gateway,
  agentId: string,
  request: ReturnType<typeof synthesizeRequest>,
) {
  const client = gateway.registry.get(agentId)?.client;
  if (!client) throw new Error(`no backend ${agentId}`);
  const audio: Uint8Array[] = [];
  for await (const piece of client.synthesize(request, { timeoutMs: CALL_TIMEOUT_MS })) {
    if (piece.kind.case === "audio") audio.push(piece.kind.value);
  }
  return Buffer.concat(audio);
}

async function failureOf(call: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call should have failed");
}

const audioFor = (prompt: StoredPrompt) => createHash("sha256").update(prompt.bytes).digest();

// ---------------------------------------------------------------------------------------------
// Tests

describe("clone prompt delivery over the agent link", () => {
  it("streams a missing prompt over the call (exact bytes), then serves the next call from cache", async () => {
    const prompt = makePrompt(1_500_000); // several link chunks
    const { source, opens } = createRecordingSource([prompt]);
    const logLines: Record<string, unknown>[] = [];
    const log = pino(
      { level: "info" },
      { write: (line: string) => logLines.push(JSON.parse(line)) },
    );
    let metrics: GatewayMetrics | undefined;
    const gateway = await startGateway(source, log, (m) => {
      metrics = m;
    });
    const dir = await tempDir();
    const { engine, synthesized } = createCloningEngine();
    const cache = await openCache(dir);
    await startAgent(gateway, { id: "gpu-a", cache, engine });
    spans.reset();

    const first = await speakWith(gateway, synthesizeRequest(prompt));
    expect(first.equals(audioFor(prompt))).toBe(true);
    expect(opens).toEqual([prompt.digest]);
    // Each delivery is an info line an operator can count: which prompt, to which agent, how big.
    const delivered = logLines.filter((line) => line.msg === "clone prompt delivered to agent");
    expect(delivered).toMatchObject([
      { agent: "gpu-a", digest: prompt.digest, bytes: prompt.bytes.length },
    ]);
    expect(synthesized).toHaveLength(1);
    expect(synthesized[0]?.clonePrompt?.digest).toBe(prompt.digest);
    expect(Buffer.from(synthesized[0]?.clonePrompt?.bytes ?? []).equals(prompt.bytes)).toBe(true);
    await cache.idle();
    expect(await readdir(dir)).toEqual([prompt.digest]);

    const second = await speakWith(gateway, synthesizeRequest(prompt));
    expect(second.equals(audioFor(prompt))).toBe(true);
    // A hit: the agent asked for nothing.
    expect(opens).toHaveLength(1);
    expect(Buffer.from(synthesized[1]?.clonePrompt?.bytes ?? []).equals(prompt.bytes)).toBe(true);

    // Metrics: one miss with its bytes, one hit.
    const text = (await metrics?.render()) ?? "";
    expect(text).toContain('voxgate_prompt_deliveries_total{outcome="miss"} 1');
    expect(text).toContain('voxgate_prompt_deliveries_total{outcome="hit"} 1');
    expect(text).toContain(`voxgate_prompt_delivered_bytes_total ${prompt.bytes.length}`);
    // Spans (in-memory exporter): the gateway's delivery and the agent's two fetches, one per
    // call, the first from the gateway and the second from the cache, each in its call's trace.
    const finished = spans.getFinishedSpans();
    const deliver = finished.filter((span) => span.name === "voxgate.prompt.deliver");
    const fetches = finished.filter((span) => span.name === "voxgate.prompt.fetch");
    expect(deliver.map((span) => span.attributes["voxgate.prompt.bytes"])).toEqual([
      prompt.bytes.length,
    ]);
    expect(fetches.map((span) => span.attributes["voxgate.prompt.cache_hit"])).toEqual([
      false,
      true,
    ]);
    const attempts = finished.filter((span) => span.name === "voxgate.attempt");
    expect(attempts).toHaveLength(2);
    expect(deliver[0]?.parentSpanContext?.spanId).toBe(attempts[0]?.spanContext().spanId);
    expect(fetches.map((span) => span.spanContext().traceId)).toEqual(
      attempts.map((span) => span.spanContext().traceId),
    );
  });

  it("fetches a prompt once for two concurrent calls that need it", async () => {
    const prompt = makePrompt(2_000_000);
    const { source, opens } = createRecordingSource([prompt]);
    const gateway = await startGateway(source);
    const { engine, synthesized } = createCloningEngine();
    await startAgent(gateway, { id: "gpu-a", cache: await openCache(await tempDir()), engine });
    const audio = await Promise.all([
      speakOn(gateway, "gpu-a", synthesizeRequest(prompt)),
      speakOn(gateway, "gpu-a", synthesizeRequest(prompt)),
    ]);
    expect(audio.every((a) => a.equals(audioFor(prompt)))).toBe(true);
    expect(opens).toEqual([prompt.digest]);
    expect(synthesized).toHaveLength(2);
    for (const request of synthesized) {
      expect(Buffer.from(request.clonePrompt?.bytes ?? []).equals(prompt.bytes)).toBe(true);
    }
  });

  it("keeps its cache across an agent restart and lists it in the hello", async () => {
    const prompt = makePrompt(300_000);
    const { source, opens } = createRecordingSource([prompt]);
    const gateway = await startGateway(source);
    const dir = await tempDir();
    const firstCache = await openCache(dir);
    const first = await startAgent(gateway, { id: "gpu-a", cache: firstCache });
    await speakWith(gateway, synthesizeRequest(prompt));
    await firstCache.idle();
    expect(opens).toHaveLength(1);
    await first.stop();
    await waitFor(() => gateway.registry.get("gpu-a") === undefined, "the agent to leave");

    const recorder = createRecorder();
    const hellos: ConnectRequest[] = [];
    const helloTap: grpc.Interceptor = (options, nextCall) =>
      new grpc.InterceptingCall(nextCall(options), {
        sendMessage(message: ConnectRequest | CallRequest, next) {
          if (message.$typeName === "voxgate.v1.ConnectRequest") hellos.push(message);
          next(message);
        },
      });
    const { engine, synthesized } = createCloningEngine();
    await startAgent(gateway, {
      id: "gpu-a",
      cache: await openCache(dir),
      engine,
      interceptors: [recorder.interceptor, helloTap],
    });
    const hello = hellos.find((m) => m.kind.case === "hello");
    expect(hello?.kind.case === "hello" && hello.kind.value.cachedPromptDigests).toEqual([
      prompt.digest,
    ]);
    // The gateway keeps the hello's list as a routing hint.
    expect(gateway.registry.get("gpu-a")?.promptDigests?.has(prompt.digest)).toBe(true);
    const audio = await speakWith(gateway, synthesizeRequest(prompt));
    expect(audio.equals(audioFor(prompt))).toBe(true);
    expect(opens).toHaveLength(1);
    expect(Buffer.from(synthesized[0]?.clonePrompt?.bytes ?? []).equals(prompt.bytes)).toBe(true);
  });

  it("evicts the least recently used prompt at its byte limit and fetches it again later", async () => {
    const [a, b, c] = [makePrompt(1_100_000), makePrompt(1_100_000), makePrompt(1_100_000)];
    const { source, opens } = createRecordingSource([a, b, c]);
    const gateway = await startGateway(source);
    const dir = await tempDir();
    const cache = await openCache(dir, 2_500_000);
    await startAgent(gateway, { id: "gpu-a", cache });
    for (const p of [a, b, c]) {
      await speakWith(gateway, synthesizeRequest(p));
      await cache.idle();
    }
    expect(opens).toEqual([a.digest, b.digest, c.digest]);
    expect((await readdir(dir)).sort()).toEqual([b.digest, c.digest].sort());
    await speakWith(gateway, synthesizeRequest(c)); // hit
    const again = await speakWith(gateway, synthesizeRequest(a)); // miss again
    expect(again.equals(audioFor(a))).toBe(true);
    expect(opens).toEqual([a.digest, b.digest, c.digest, a.digest]);
    await cache.idle();
    expect((await readdir(dir)).sort()).toEqual([a.digest, c.digest].sort());
  });

  it("routes a call to an agent that already holds its prompt, before a less loaded one", async () => {
    const [held, other] = [makePrompt(200_000), makePrompt(200_000)];
    const { source, opens } = createRecordingSource([held, other]);
    const gateway = await startGateway(source);
    // b joins first: with no hint, ties go to it.
    const b = createCloningEngine();
    await startAgent(gateway, {
      id: "gpu-b",
      cache: await openCache(await tempDir()),
      engine: b.engine,
    });
    const a = createCloningEngine();
    await startAgent(gateway, {
      id: "gpu-a",
      cache: await openCache(await tempDir()),
      engine: a.engine,
    });
    await speakOn(gateway, "gpu-a", synthesizeRequest(held));
    expect(gateway.registry.get("gpu-a")?.promptDigests?.has(held.digest)).toBe(true);

    for (let i = 0; i < 3; i++) await speakWith(gateway, synthesizeRequest(held));
    await speakWith(gateway, synthesizeRequest(other));
    expect(servedBy).toEqual(["gpu-a", "gpu-a", "gpu-a", "gpu-b"]);
    expect(opens).toEqual([held.digest, other.digest]);
    expect(b.synthesized.map((r) => r.clonePrompt?.digest)).toEqual([other.digest]);
  });

  it.each([
    [
      "corrupted",
      (bytes: Uint8Array) => Uint8Array.from(bytes, (v, i) => (i === 1234 ? v ^ 1 : v)),
    ],
    ["truncated", (bytes: Uint8Array) => bytes.subarray(0, bytes.byteLength - 10)],
    ["too long", (bytes: Uint8Array) => Buffer.concat([bytes, Buffer.from("extra")])],
  ])(
    "fails the call with DATA_LOSS and caches nothing when the prompt arrives %s",
    async (_name, tamper) => {
      const prompt = makePrompt(400_000);
      const { source, opens, state } = createRecordingSource([prompt]);
      state.tamper = tamper;
      const gateway = await startGateway(source);
      const dir = await tempDir();
      const { engine, synthesized } = createCloningEngine();
      const cache = await openCache(dir);
      await startAgent(gateway, { id: "gpu-a", cache, engine });
      const error = await failureOf(() => speakOn(gateway, "gpu-a", synthesizeRequest(prompt)));
      expect(error.code).toBe(Code.DataLoss);
      expect(error.rawMessage).toContain(prompt.digest);
      expect(opens).toHaveLength(1);
      expect(synthesized).toHaveLength(0);
      await cache.idle();
      expect(await readdir(dir)).toEqual([]);

      // With the store fixed, the next call fetches again and works.
      state.tamper = undefined;
      const audio = await speakOn(gateway, "gpu-a", synthesizeRequest(prompt));
      expect(audio.equals(audioFor(prompt))).toBe(true);
      await cache.idle();
      expect(await readdir(dir)).toEqual([prompt.digest]);
    },
  );

  it("never sends an agent a URL or a credential: the url of a clone prompt is stripped", async () => {
    const prompt = makePrompt(700_000);
    const { source } = createRecordingSource([prompt]);
    const gateway = await startGateway(source);
    const recorder = createRecorder();
    const { engine, synthesized } = createCloningEngine();
    await startAgent(gateway, {
      id: "gpu-a",
      cache: await openCache(await tempDir()),
      engine,
      interceptors: [recorder.interceptor],
    });
    const signedUrl =
      "https://prompts.s3.us-east-1.amazonaws.com/prompts/sha256/ab/x?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
      "&X-Amz-Credential=AKIAEXAMPLE%2F20260101&X-Amz-Signature=deadbeef";
    const request = synthesizeRequest(prompt, { url: signedUrl });
    const audio = await speakWith(gateway, request);
    expect(audio.equals(audioFor(prompt))).toBe(true);
    // The caller's own request is untouched (a serverless retry would still need it).
    expect(request.voice.kind.value.url).toBe(signedUrl);

    // What the agent got: the request without url, and the prompt bytes over the stream.
    const callMessages = recorder.received.filter(
      (m): m is CallResponse => (m as CallResponse).$typeName === "voxgate.v1.CallResponse",
    );
    const requests = callMessages.flatMap((m) =>
      m.kind.case === "request" ? [fromBinary(SynthesizeRequestSchema, m.kind.value)] : [],
    );
    expect(requests).toHaveLength(1);
    const sent = requests[0]?.voice?.kind;
    expect(sent?.case === "clonePrompt" && sent.value.digest).toBe(prompt.digest);
    expect(sent?.case === "clonePrompt" && sent.value.url).toBe("");
    const chunks = callMessages.flatMap((m) =>
      m.kind.case === "promptChunk" ? [m.kind.value] : [],
    );
    expect(Buffer.concat(chunks.map((c) => c.data)).equals(prompt.bytes)).toBe(true);
    expect(chunks.at(-1)?.last).toBe(true);
    expect(synthesized[0]?.clonePrompt?.bytes.byteLength).toBe(prompt.bytes.byteLength);

    const everything = recorder.text();
    expect(everything.length).toBeGreaterThan(prompt.bytes.byteLength);
    for (const forbidden of [
      "http://",
      "https://",
      "X-Amz-",
      "Signature",
      "AKIAEXAMPLE",
      AGENT_TOKEN,
    ]) {
      expect(everything.includes(forbidden), `the agent received "${forbidden}"`).toBe(false);
    }
  });

  it("refuses a clone prompt made by another model with FAILED_PRECONDITION naming both, fetching nothing", async () => {
    const prompt = makePrompt(1000);
    const { source, opens } = createRecordingSource([prompt]);
    const gateway = await startGateway(source);
    const { engine, synthesized } = createCloningEngine();
    await startAgent(gateway, { id: "gpu-a", cache: await openCache(await tempDir()), engine });
    const error = await failureOf(() =>
      speakOn(
        gateway,
        "gpu-a",
        synthesizeRequest(prompt, { model: { family: "qwen3-tts", size: "1.7b" } }),
      ),
    );
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("qwen3-tts 1.7b");
    expect(error.rawMessage).toContain("fake-clone 1b");
    expect(opens).toHaveLength(0);
    expect(synthesized).toHaveLength(0);
  });

  it("answers FAILED_PRECONDITION when the gateway has no prompt store", async () => {
    const prompt = makePrompt(1000);
    const gateway = await startGateway(undefined);
    const dir = await tempDir();
    const { engine, synthesized } = createCloningEngine();
    await startAgent(gateway, { id: "gpu-a", cache: await openCache(dir), engine });
    const error = await failureOf(() => speakOn(gateway, "gpu-a", synthesizeRequest(prompt)));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("no prompt store");
    expect(synthesized).toHaveLength(0);
    expect(await readdir(dir)).toEqual([]);
  });

  it("answers NOT_FOUND when the store lacks the prompt, caching nothing", async () => {
    const prompt = makePrompt(1000);
    const { source, opens } = createRecordingSource([]);
    const gateway = await startGateway(source);
    const dir = await tempDir();
    const { engine, synthesized } = createCloningEngine();
    await startAgent(gateway, { id: "gpu-a", cache: await openCache(dir), engine });
    const error = await failureOf(() => speakOn(gateway, "gpu-a", synthesizeRequest(prompt)));
    expect(error.code).toBe(Code.NotFound);
    expect(opens).toEqual([prompt.digest]);
    expect(synthesized).toHaveLength(0);
    expect(await readdir(dir)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// A rogue agent: speaks the agent protocol by hand and asks for what it should not.

type RogueClient = grpc.Client & {
  connect(md: grpc.Metadata): grpc.ClientDuplexStream<ConnectRequest, ConnectResponse>;
  call(md: grpc.Metadata): grpc.ClientDuplexStream<CallRequest, CallResponse>;
};

async function startRogueAgent(gateway: Gateway, id: string) {
  const Client = grpc.makeGenericClientConstructor(
    createGrpcServiceDefinition(AgentService),
    "AgentService",
  ) as unknown as new (
    address: string,
    credentials: grpc.ChannelCredentials,
  ) => RogueClient;
  const client = new Client(`127.0.0.1:${gateway.port}`, grpc.credentials.createInsecure());
  const auth = new grpc.Metadata();
  auth.set("authorization", `Bearer ${AGENT_TOKEN}`);
  const control = client.connect(auth);
  control.on("error", () => {});
  cleanups.push(async () => {
    control.cancel();
    client.close();
  });
  const offers: ConnectResponse[] = [];
  let sessionId = "";
  control.on("data", (message: ConnectResponse) => {
    if (message.kind.case === "welcome") sessionId = message.kind.value.sessionId;
    if (message.kind.case === "offer") offers.push(message);
  });
  const send = (message: MessageInitShape<typeof ConnectRequestSchema>) =>
    control.write(create(ConnectRequestSchema, message));
  const { engine } = createCloningEngine();
  send({
    kind: {
      case: "hello",
      value: { agentId: id, version: "rogue", capabilities: describeEngines([engine], 1) },
    },
  });
  await waitFor(() => sessionId !== "", "the rogue's welcome");
  send({ kind: { case: "heartbeat", value: { sequence: 0n } } });
  await waitFor(
    () => gateway.registry.get(id)?.state === BackendState.READY,
    "the rogue to be ready",
  );

  /** Waits for the next offer, opens its call stream and returns a reader over it. */
  const takeCall = async () => {
    await waitFor(() => offers.length > 0, "an offer");
    const offer = offers.shift();
    if (offer?.kind.case !== "offer") throw new Error("no offer");
    const md = auth.clone();
    md.set("x-voxgate-session", sessionId);
    const stream = client.call(md);
    const received: CallResponse[] = [];
    const ended = new Promise<grpc.StatusObject>((resolve) => {
      stream.on("status", resolve);
      stream.on("error", () => {});
    });
    stream.on("data", (message: CallResponse) => received.push(message));
    const write = (message: MessageInitShape<typeof CallRequestSchema>) =>
      stream.write(create(CallRequestSchema, message));
    write({ kind: { case: "accept", value: { callId: offer.kind.value.callId } } });
    await waitFor(() => received.some((m) => m.kind.case === "requestsDone"), "the request");
    return { stream, received, ended, write };
  };
  return { takeCall };
}

describe("what an agent may fetch", () => {
  it("refuses a digest the call does not reference with PERMISSION_DENIED, sending no byte", async () => {
    const wanted = makePrompt(50_000);
    const secret = makePrompt(50_000);
    const { source, opens } = createRecordingSource([wanted, secret]);
    const gateway = await startGateway(source);
    const rogue = await startRogueAgent(gateway, "rogue");
    const caller = failureOf(() => speakOn(gateway, "rogue", synthesizeRequest(wanted)));
    const call = await rogue.takeCall();
    call.write({ kind: { case: "promptWanted", value: { digest: secret.digest } } });
    const status = await call.ended;
    expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(status.details).toContain("not referenced by the call");
    expect(call.received.some((m) => m.kind.case === "promptChunk")).toBe(false);
    expect(opens).toHaveLength(0);
    // The caller is told the backend failed (not that the caller lacks a permission).
    const error = await caller;
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toContain("refused");
  });

  it("sends a referenced prompt once per call and refuses a second ask", async () => {
    const wanted = makePrompt(600_000);
    const { source, opens } = createRecordingSource([wanted]);
    const gateway = await startGateway(source);
    const rogue = await startRogueAgent(gateway, "rogue");
    const caller = failureOf(() => speakOn(gateway, "rogue", synthesizeRequest(wanted)));
    const call = await rogue.takeCall();
    // The request it got carries no url and names the prompt.
    const request = call.received.find((m) => m.kind.case === "request");
    const decoded =
      request?.kind.case === "request"
        ? fromBinary(SynthesizeRequestSchema, request.kind.value)
        : undefined;
    expect(decoded?.voice?.kind.case === "clonePrompt" && decoded.voice.kind.value.digest).toBe(
      wanted.digest,
    );
    call.write({ kind: { case: "promptWanted", value: { digest: wanted.digest } } });
    await waitFor(
      () => call.received.some((m) => m.kind.case === "promptChunk" && m.kind.value.last),
      "the prompt",
    );
    const bytes = Buffer.concat(
      call.received.flatMap((m) => (m.kind.case === "promptChunk" ? [m.kind.value.data] : [])),
    );
    expect(bytes.equals(wanted.bytes)).toBe(true);
    for (const m of call.received) {
      if (m.kind.case === "promptChunk") {
        expect(m.kind.value.data.byteLength).toBeLessThanOrEqual(256 * 1024);
      }
    }
    call.write({ kind: { case: "promptWanted", value: { digest: wanted.digest } } });
    const status = await call.ended;
    expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(status.details).toContain("already sent");
    expect(opens).toHaveLength(1);
    expect((await caller).code).toBe(Code.Unavailable);
  });
});

// ---------------------------------------------------------------------------------------------
// CreateClonePrompt on an agent, through the registry's client.

async function* cloneRequests(
  reference: Uint8Array,
  pieceBytes = 100_000,
): AsyncGenerator<MessageInitShape<typeof CreateClonePromptRequestSchema>> {
  yield {
    kind: {
      case: "spec",
      value: { contentType: "audio/wav", referenceText: "hello there", language: "en" },
    },
  };
  for (let offset = 0; offset < reference.byteLength; offset += pieceBytes) {
    yield {
      kind: { case: "referenceAudio", value: reference.subarray(offset, offset + pieceBytes) },
    };
  }
}

async function clone(gateway: Gateway, reference: Uint8Array) {
  const pieces: CreateClonePromptResponse[] = [];
  for await (const piece of gateway.registry.call(
    { feature: Feature.CLONE_PROMPT_CREATE },
    { timeoutMs: CALL_TIMEOUT_MS },
    ({ backend, signal, timeoutMs }) =>
      backend.client.createClonePrompt(cloneRequests(reference), {
        signal,
        ...(timeoutMs ? { timeoutMs } : {}),
      }),
  )) {
    pieces.push(piece);
  }
  return pieces;
}

describe("CreateClonePrompt on an agent", () => {
  it("streams the reference in and the prompt out, described first", async () => {
    const gateway = await startGateway(undefined);
    const { engine, cloned } = createCloningEngine();
    await startAgent(gateway, { id: "gpu-a", engine });
    const features = gateway.registry.get("gpu-a")?.capabilities.engines[0]?.features;
    expect(features).toEqual(
      expect.arrayContaining([Feature.CLONE_PROMPT_CREATE, Feature.CLONE_PROMPT_SYNTHESIZE]),
    );
    const reference = new Uint8Array(randomBytes(350_000));
    const pieces = await clone(gateway, reference);
    const [first, ...rest] = pieces;
    expect(first?.kind.case).toBe("description");
    if (first?.kind.case !== "description") throw new Error("no description");
    expect(first.kind.value.model).toMatchObject(MODEL);
    expect(first.kind.value.engine).toBe("fake-clone");
    expect(first.kind.value.contentType).toBe("application/x-fake");
    expect(first.kind.value.sizeBytes).toBe(BigInt(reference.byteLength * 3));
    const prompt = Buffer.concat(
      rest.map((p) => (p.kind.case === "prompt" ? p.kind.value : new Uint8Array())),
    );
    expect(prompt.equals(promptFor(reference))).toBe(true);
    expect(cloned).toHaveLength(1);
    expect(Buffer.from(cloned[0]?.referenceAudio ?? []).equals(reference)).toBe(true);
    expect(cloned[0]).toMatchObject({
      contentType: "audio/wav",
      referenceText: "hello there",
      language: "en",
    });
  });

  it("refuses reference audio over the agent's limit with INVALID_ARGUMENT naming the setting", async () => {
    const gateway = await startGateway(undefined);
    const { engine, cloned } = createCloningEngine();
    await startAgent(gateway, { id: "gpu-a", engine, maxReferenceBytes: 200_000 });
    const error = await failureOf(() => clone(gateway, new Uint8Array(250_000)));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain("VOXGATE_AGENT_MAX_REFERENCE_BYTES");
    expect(cloned).toHaveLength(0);
  });

  it("maps the engine's EngineInputError to INVALID_ARGUMENT", async () => {
    const gateway = await startGateway(undefined);
    const { engine, cloned } = createCloningEngine();
    await startAgent(gateway, { id: "gpu-a", engine });
    const error = await failureOf(() => clone(gateway, Buffer.from("BAD audio")));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain("reference audio is silent");
    expect(cloned).toHaveLength(1);
  });

  it("answers UNIMPLEMENTED naming an engine that cannot clone", async () => {
    const gateway = await startGateway(undefined);
    const { engine } = createCloningEngine("plain-tts");
    const plain: TtsEngine = {
      info: { ...engine.info, supportsCloning: false },
      synthesize: (request, signal) => engine.synthesize(request, signal),
      close: () => engine.close(),
    };
    await startAgent(gateway, { id: "gpu-plain", engine: plain });
    expect(gateway.registry.get("gpu-plain")?.capabilities.engines[0]?.features).toEqual([
      Feature.SYNTHESIZE,
    ]);
    const client = gateway.registry.get("gpu-plain")?.client;
    if (!client) throw new Error("no client");
    const error = await failureOf(async () => {
      for await (const _ of client.createClonePrompt(cloneRequests(new Uint8Array(10)), {
        timeoutMs: CALL_TIMEOUT_MS,
      })) {
        // drain
      }
    });
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toContain("plain-tts");
  });
});
