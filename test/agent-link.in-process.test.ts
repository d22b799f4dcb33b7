/**
 * The agent link end to end, in one process: a real gateway (public port + agent port on
 * 127.0.0.1:0) and a real Agent dialling it over gRPC, hosting a fake engine behind the real engine
 * host, called through the typed voxgate client over Connect (HTTP/1.1), gRPC (HTTP/2) and gRPC-Web.
 */
import { Writable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Logger, pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import {
  createVoxgateClient,
  type VoxgateClient,
  type VoxgateHttpVersion,
  type VoxgateProtocol,
} from "../clients/voxgate-client.js";
import type { HttpBody } from "../gen/google/api/httpbody_pb.js";
import { HealthCheckResponse_ServingStatus } from "../gen/health/v1/health_pb.js";
import { AudioEncoding } from "../gen/voxgate/v1/audio_pb.js";
import { BackendState } from "../gen/voxgate/v1/backend_admin_pb.js";
import { Agent, agentLinkOptionsFromSettings } from "../services/agent/agent.js";
import { agentSettings } from "../services/agent/agent-settings.js";
import { parseWav, WAV_HEADER_BYTES } from "../services/audio/wav.js";
import { hashToken } from "../services/auth/token-codec.js";
import { settingDefaults } from "../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../services/engine-host/engine-host-handler.js";
import {
  createEngineHost,
  describeEngines,
  type EngineHost,
} from "../services/engine-host/index.js";
import {
  createGateway,
  type Gateway,
  type GatewayAddresses,
  type GatewayOptions,
} from "../services/gateway/index.js";
import {
  createInProcessFakeEngine,
  type InProcessFakeEngine,
  type InProcessFakeEngineOptions,
} from "./helpers/in-process-fake-engine.js";
import { kTestGatewayLimits } from "./helpers/test-limits.js";

const CLIENT_TOKEN = "vxg_in-process-client-token";
const AGENT_TOKEN = "vxg_in-process-agent-token";
const AGENT_ID = "gpu-box-1";

const silent = pino({ level: "silent" });

/** Three sentences, three chunks each. */
const SHORT_TEXT = "One fish. Two fish. Red fish.";
/** Twenty sentences: long enough to outlast every deadline and abort below. */
const LONG_TEXT = Array.from({ length: 20 }, (_, i) => `Sentence number ${i + 1}.`).join(" ");

// Everything a test opens, closed in reverse kinds after it: clients, then agents, then gateways.
const openClients: VoxgateClient[] = [];
const openAgents: { agent: Agent; run: Promise<void> }[] = [];
const openGateways: Gateway[] = [];

afterEach(async () => {
  for (const client of openClients.splice(0)) client.close();
  await Promise.all(
    openAgents.splice(0).map(async ({ agent, run }) => {
      await agent.shutdown();
      await run;
    }),
  );
  await Promise.all(openGateways.splice(0).map((gateway) => gateway.close(500)));
});

/** Polls `condition` every 10 ms until it holds; fails after `timeoutMs`. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Rejects if `promise` takes longer than `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A logger that keeps its JSON lines, for asserting on what the gateway logged. */
function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(String(chunk));
      callback();
    },
  });
  return { log: pino({ level: "warn" }, sink), lines };
}

async function startGateway(
  log: Logger = silent,
  agentPort = 0,
  admission: GatewayOptions["admission"] = {},
): Promise<{ gateway: Gateway } & GatewayAddresses> {
  const gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: agentPort },
    tokens: [
      { name: "client", sha256: hashToken(CLIENT_TOKEN), scopes: ["tts", "voices", "admin"] },
      { name: "gpu-hosts", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] },
    ],
    limits: kTestGatewayLimits,
    admission,
    log,
  });
  openGateways.push(gateway);
  return { gateway, ...(await gateway.listen()) };
}

interface StartedAgent {
  agent: Agent;
  engine: InProcessFakeEngine;
  host: EngineHost;
  run: Promise<void>;
}

function startAgent(
  agentPort: number,
  options: { token?: string; engine?: InProcessFakeEngineOptions; slots?: number } = {},
): StartedAgent {
  const engine = createInProcessFakeEngine(options.engine);
  const slots = options.slots ?? 2;
  const host = createEngineHost({
    ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
    engines: [engine],
    slots,
  });
  const agent = new Agent({
    ...agentLinkOptionsFromSettings(settingDefaults(agentSettings)),
    gatewayAddress: `127.0.0.1:${agentPort}`,
    token: options.token ?? AGENT_TOKEN,
    agentId: AGENT_ID,
    version: "test",
    host,
    capabilities: describeEngines([engine], slots),
    backoff: { initialDelayMs: 50, maxDelayMs: 200 },
    drainTimeoutMs: 10_000,
    log: silent,
  });
  const run = agent.run();
  openAgents.push({ agent, run });
  return { agent, engine, host, run };
}

/** A gateway with one ready agent. */
async function startStack(
  engine: InProcessFakeEngineOptions = {},
  slots = 2,
  admission: GatewayOptions["admission"] = {},
) {
  const started = await startGateway(silent, 0, admission);
  const agent = startAgent(started.agentPort, { engine, slots });
  await waitFor(
    () => started.gateway.registry.get(AGENT_ID)?.state === BackendState.READY,
    "the agent to register",
  );
  return { ...started, ...agent };
}

function client(baseUrl: string, protocol: VoxgateProtocol, httpVersion: VoxgateHttpVersion) {
  const created = createVoxgateClient({ baseUrl, token: CLIENT_TOKEN, protocol, httpVersion });
  openClients.push(created);
  return created;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

const u32 = (bytes: Uint8Array, offset: number) =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, true);
const tag = (bytes: Uint8Array, offset: number) =>
  String.fromCharCode(...bytes.subarray(offset, offset + 4));

/** Runs `call` and returns the ConnectError it fails with. */
async function failureOf(call: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call should have failed");
}

const protocols: [string, VoxgateProtocol, VoxgateHttpVersion][] = [
  ["Connect over HTTP/1.1", "connect", "1.1"],
  ["gRPC over HTTP/2", "grpc", "2"],
  ["gRPC-Web over HTTP/1.1", "grpc-web", "1.1"],
];

describe.each(protocols)("agent link, %s", (_name, protocol, httpVersion) => {
  it("streams the engine's PCM behind a streaming WAV header, incrementally, naming the agent", async () => {
    const stack = await startStack({ chunksPerSentence: 3, chunkDelayMs: 60 });
    const voxgate = client(stack.publicUrl, protocol, httpVersion);
    const headers: Headers[] = [];
    const chunks: HttpBody[] = [];
    let firstChunkAt: number | undefined;
    let engineChunksAtFirst: number | undefined;
    for await (const chunk of voxgate.tts.streamSynthesize(
      { text: SHORT_TEXT, voice: "fake-voice" },
      { onHeader: (h) => headers.push(h) },
    )) {
      if (firstChunkAt === undefined) {
        firstChunkAt = performance.now();
        engineChunksAtFirst = stack.engine.calls[0]?.chunks.length;
      }
      chunks.push(chunk);
    }

    expect(headers[0]?.get("x-voxgate-backend")).toBe(AGENT_ID);
    expect(headers[0]?.get("x-voxgate-attempts")).toBe("1");

    const first = chunks[0];
    expect(first?.contentType).toBe("audio/wav");
    expect(chunks.slice(1).every((c) => c.contentType === "")).toBe(true);
    const header = first?.data.subarray(0, WAV_HEADER_BYTES) ?? new Uint8Array();
    expect(tag(header, 0)).toBe("RIFF");
    expect(u32(header, 4)).toBe(0xffff_ffff);
    expect(tag(header, 8)).toBe("WAVE");
    expect(u32(header, 24)).toBe(16_000);
    expect(tag(header, 36)).toBe("data");
    expect(u32(header, 40)).toBe(0xffff_ffff);
    // The first chunk carries real audio with the header.
    expect(first?.data.byteLength).toBeGreaterThan(WAV_HEADER_BYTES);

    const audio = concat(chunks.map((c) => c.data)).subarray(WAV_HEADER_BYTES);
    const call = stack.engine.calls[0];
    expect(stack.engine.calls).toHaveLength(1);
    expect(call?.request.text).toBe(SHORT_TEXT);
    expect(call?.request.voiceId).toBe("fake-voice");
    expect(Buffer.from(audio).equals(Buffer.from(concat(call?.chunks ?? [])))).toBe(true);
    expect(Buffer.from(audio).equals(Buffer.from(stack.engine.expectedPcm(SHORT_TEXT)))).toBe(true);
    expect(audio.byteLength).toBe(9 * 160 * 2);

    // The first audio reached the client before the engine was done.
    expect(call?.finishedAt).toBeDefined();
    expect(firstChunkAt).toBeLessThan(call?.finishedAt ?? 0);
    expect(engineChunksAtFirst).toBeLessThan(stack.engine.chunkCount(SHORT_TEXT));

    await waitFor(() => stack.gateway.registry.get(AGENT_ID)?.inFlight === 0, "the lease release");
    expect(stack.gateway.registry.get(AGENT_ID)?.callsTotal).toBe(1);
    expect(stack.gateway.registry.get(AGENT_ID)?.failuresTotal).toBe(0);
  });

  it("returns a whole clip with the exact WAV sizes", async () => {
    const stack = await startStack({ chunksPerSentence: 2, chunkDelayMs: 5, samplesPerChunk: 200 });
    const voxgate = client(stack.publicUrl, protocol, httpVersion);
    const clip = await voxgate.tts.synthesize({ text: SHORT_TEXT });
    const pcmBytes = 3 * 2 * 200 * 2;
    expect(clip.contentType).toBe("audio/wav");
    expect(clip.data.byteLength).toBe(WAV_HEADER_BYTES + pcmBytes);
    expect(tag(clip.data, 0)).toBe("RIFF");
    expect(u32(clip.data, 4)).toBe(36 + pcmBytes);
    expect(u32(clip.data, 40)).toBe(pcmBytes);
    expect(parseWav(clip.data)).toEqual({
      sampleRateHz: 16_000,
      channels: 1,
      bitsPerSample: 16,
      dataOffset: WAV_HEADER_BYTES,
      dataBytes: pcmBytes,
    });
    const audio = clip.data.subarray(WAV_HEADER_BYTES);
    expect(Buffer.from(audio).equals(Buffer.from(stack.engine.expectedPcm(SHORT_TEXT)))).toBe(true);
  });

  it("cancels the engine and frees the slot when the client aborts after the first chunk", async () => {
    const stack = await startStack({ chunkDelayMs: 50 });
    const voxgate = client(stack.publicUrl, protocol, httpVersion);
    const controller = new AbortController();
    let received = 0;
    const error = await failureOf(async () => {
      for await (const _chunk of voxgate.tts.streamSynthesize(
        { text: LONG_TEXT },
        { signal: controller.signal },
      )) {
        received++;
        if (received === 1) controller.abort();
      }
    });
    const abortedAt = performance.now();
    expect(error.code).toBe(Code.Canceled);
    expect(received).toBe(1);

    await waitFor(() => stack.engine.calls[0]?.aborted === true, "the engine's signal", 2_000);
    expect((stack.engine.calls[0]?.abortedAt ?? Infinity) - abortedAt).toBeLessThan(2_000);
    expect(stack.engine.calls[0]?.finishedAt).toBeUndefined();
    expect(stack.engine.calls[0]?.chunks.length).toBeLessThan(stack.engine.chunkCount(LONG_TEXT));
    await waitFor(() => stack.gateway.registry.get(AGENT_ID)?.inFlight === 0, "the registry slot");
    await waitFor(() => stack.host.inFlight === 0 && stack.agent.inFlight === 0, "the agent slot");
    // The caller went away: not the backend's fault.
    expect(stack.gateway.registry.get(AGENT_ID)?.failuresTotal).toBe(0);
  });

  it("ends with DEADLINE_EXCEEDED and cancels the engine when the deadline is shorter than the synthesis", async () => {
    const stack = await startStack({ chunkDelayMs: 50 });
    const voxgate = client(stack.publicUrl, protocol, httpVersion);
    expect(stack.engine.durationMs(LONG_TEXT)).toBeGreaterThan(2_000);
    const error = await failureOf(async () => {
      for await (const _chunk of voxgate.tts.streamSynthesize(
        { text: LONG_TEXT },
        { timeoutMs: 400 },
      )) {
        // drain
      }
    });
    expect(error.code).toBe(Code.DeadlineExceeded);
    await waitFor(() => stack.engine.calls[0]?.aborted === true, "the engine's signal", 2_000);
    expect(stack.engine.calls[0]?.finishedAt).toBeUndefined();
    await waitFor(() => stack.gateway.registry.get(AGENT_ID)?.inFlight === 0, "the registry slot");
  });

  it("answers UNAVAILABLE naming the problem when no agent is connected", async () => {
    const { publicUrl, gateway } = await startGateway();
    const voxgate = client(publicUrl, protocol, httpVersion);
    const unary = await failureOf(() => voxgate.tts.synthesize({ text: SHORT_TEXT }));
    expect(unary.code).toBe(Code.Unavailable);
    expect(unary.rawMessage).toContain("no backend is connected");
    const stream = await failureOf(async () => {
      for await (const _chunk of voxgate.tts.streamSynthesize({ text: SHORT_TEXT })) {
        // nothing arrives
      }
    });
    expect(stream.code).toBe(Code.Unavailable);
    expect(stream.rawMessage).toContain("no backend is connected");
    expect(gateway.registry.list()).toEqual([]);
  });
});

describe("agent link lifecycle", () => {
  it("streams raw PCM as audio/L16 without a header when asked for PCM", async () => {
    const stack = await startStack({ chunkDelayMs: 5 });
    const voxgate = client(stack.publicUrl, "connect", "1.1");
    const chunks: HttpBody[] = [];
    for await (const chunk of voxgate.tts.streamSynthesize({
      text: SHORT_TEXT,
      encoding: AudioEncoding.PCM,
    })) {
      chunks.push(chunk);
    }
    expect(chunks[0]?.contentType).toBe("audio/L16; rate=16000; channels=1");
    const audio = concat(chunks.map((c) => c.data));
    expect(Buffer.from(audio).equals(Buffer.from(stack.engine.expectedPcm(SHORT_TEXT)))).toBe(true);
  });

  it("finishes a running stream during drain, refuses new calls meanwhile, and ends run()", async () => {
    const stack = await startStack({ chunksPerSentence: 3, chunkDelayMs: 100 });
    const voxgate = client(stack.publicUrl, "connect", "1.1");
    const registry = stack.gateway.registry;
    const chunks: HttpBody[] = [];
    let drained: Promise<void> | undefined;
    let stateDuringDrain: BackendState | undefined;
    let refusal: ConnectError | undefined;

    for await (const chunk of voxgate.tts.streamSynthesize({ text: SHORT_TEXT })) {
      chunks.push(chunk);
      if (chunks.length === 1) {
        drained = stack.agent.drain("test drain");
        await waitFor(
          () => registry.get(AGENT_ID)?.state === BackendState.DRAINING,
          "the backend to be DRAINING",
        );
        stateDuringDrain = registry.get(AGENT_ID)?.state;
        refusal = await failureOf(() => voxgate.tts.synthesize({ text: "Too late." }));
      }
    }

    expect(stateDuringDrain).toBe(BackendState.DRAINING);
    expect(refusal?.code).toBe(Code.Unavailable);
    expect(refusal?.rawMessage).toContain("draining");
    // The stream that was running when the drain began delivered all its audio.
    const audio = concat(chunks.map((c) => c.data)).subarray(WAV_HEADER_BYTES);
    expect(Buffer.from(audio).equals(Buffer.from(stack.engine.expectedPcm(SHORT_TEXT)))).toBe(true);
    expect(stack.engine.calls).toHaveLength(1);
    expect(stack.engine.calls[0]?.aborted).toBe(false);

    await within(drained ?? Promise.reject(new Error("drain never started")), 5_000, "drain()");
    await within(stack.run, 5_000, "run()");
    expect(stack.agent.state).toBe("stopped");
    await waitFor(() => registry.get(AGENT_ID) === undefined, "the backend to leave the registry");
  });

  it("leaves the registry quickly on shutdown, and run() resolves", async () => {
    const stack = await startStack();
    const registry = stack.gateway.registry;
    const events: BackendState[] = [];
    const unsubscribe = registry.watch((e) => {
      if (e.backend.id === AGENT_ID) events.push(e.backend.state);
    });
    try {
      const started = performance.now();
      await stack.agent.shutdown();
      await waitFor(() => registry.get(AGENT_ID) === undefined, "the backend to leave", 3_000);
      expect(performance.now() - started).toBeLessThan(3_000);
      expect(events).toContain(BackendState.REMOVED);
      await within(stack.run, 5_000, "run()");
      expect(stack.agent.state).toBe("stopped");
      // Idempotent.
      await stack.agent.shutdown();
    } finally {
      unsubscribe();
    }
  });

  it.each([
    ["an unknown token", "vxg_not-a-configured-token", "invalid agent token"],
    [
      "a client token",
      CLIENT_TOKEN,
      'token "client" has no agent scope; the agent port takes agent tokens only',
    ],
  ])("never registers an agent presenting %s", async (_case, token, reason) => {
    const { log, lines } = capturingLogger();
    const { gateway, agentPort, publicUrl } = await startGateway(log);
    const added: string[] = [];
    const unsubscribe = gateway.registry.watch((e) => added.push(e.backend.id));
    try {
      const { agent } = startAgent(agentPort, { token });
      const refusals = () =>
        lines
          .map((line) => JSON.parse(line) as { msg?: string; reason?: string })
          .filter((entry) => entry.msg === "agent refused");
      // Two refusals: the agent was turned away and its retry was too.
      await waitFor(() => refusals().length >= 2, "the gateway to refuse the agent twice");
      expect(refusals()[0]?.reason).toBe(reason);
      expect(gateway.registry.list()).toEqual([]);
      expect(added).toEqual([]);
      expect(agent.state).not.toBe("connected");
      expect(lines.join("")).not.toContain(token);

      const voxgate = client(publicUrl, "connect", "1.1");
      const error = await failureOf(() => voxgate.tts.synthesize({ text: SHORT_TEXT }));
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toContain("no backend is connected");
    } finally {
      unsubscribe();
    }
  });

  it("keeps two concurrent calls on one agent apart, each on its own call stream", async () => {
    const stack = await startStack({ chunksPerSentence: 3, chunkDelayMs: 40 }, 2);
    const voxgate = client(stack.publicUrl, "grpc", "2");
    const texts = ["Alpha one. Alpha two.", "Bravo one. Bravo two. Bravo three."];
    let peakInFlight = 0;
    const sampler = setInterval(() => {
      peakInFlight = Math.max(peakInFlight, stack.gateway.registry.get(AGENT_ID)?.inFlight ?? 0);
    }, 5);
    try {
      const results = await Promise.all(
        texts.map(async (text) => {
          const parts: Uint8Array[] = [];
          for await (const chunk of voxgate.tts.streamSynthesize({ text })) parts.push(chunk.data);
          return concat(parts).subarray(WAV_HEADER_BYTES);
        }),
      );
      results.forEach((audio, i) => {
        const expected = stack.engine.expectedPcm(texts[i] ?? "");
        expect(Buffer.from(audio).equals(Buffer.from(expected)), `audio of call ${i}`).toBe(true);
      });
      expect(
        Buffer.from(stack.engine.expectedPcm(texts[0] ?? "")).equals(
          Buffer.from(stack.engine.expectedPcm(texts[1] ?? "").subarray(0, 6 * 160 * 2)),
        ),
      ).toBe(false);
      expect(peakInFlight).toBe(2);
      expect(stack.gateway.registry.get(AGENT_ID)?.callsTotal).toBe(2);
    } finally {
      clearInterval(sampler);
    }
  });

  it("answers RESOURCE_EXHAUSTED with Retry-After when the only slot is taken and there is no queue", async () => {
    const stack = await startStack({ chunkDelayMs: 50 }, 1, { maxQueued: 0 });
    const voxgate = client(stack.publicUrl, "connect", "1.1");
    const controller = new AbortController();
    const running = voxgate.tts.streamSynthesize(
      { text: LONG_TEXT },
      { signal: controller.signal },
    );
    const iterator = running[Symbol.asyncIterator]();
    await iterator.next(); // the first chunk: the slot is in use
    try {
      const error = await failureOf(() => voxgate.tts.synthesize({ text: SHORT_TEXT }));
      expect(error.code).toBe(Code.ResourceExhausted);
      expect(error.rawMessage).toBe(
        "every slot is busy and the admission queue is full (0 calls waiting; max queued calls: VOXGATE_QUEUE_MAX); retry later",
      );
      expect(error.metadata.get("retry-after")).toMatch(/^[1-9]\d*$/);
      expect(stack.engine.calls).toHaveLength(1);
    } finally {
      controller.abort();
      await iterator.return?.();
    }
    await waitFor(() => stack.gateway.registry.get(AGENT_ID)?.inFlight === 0, "the slot to free");
  });

  it.each([
    [
      "text over the limit",
      { text: "x".repeat(5001) },
      Code.InvalidArgument,
      "VOXGATE_MAX_TEXT_CHARS",
    ],
    ["empty text", { text: "  " }, Code.InvalidArgument, "text is empty"],
    [
      "an encoding without an encoder",
      { text: "Hi.", encoding: 42 as AudioEncoding },
      Code.Unimplemented,
      "encoding 42 is not available",
    ],
    [
      "an engine nobody hosts",
      { text: "Hi.", engine: "piper" },
      Code.FailedPrecondition,
      'engine "piper"',
    ],
  ])(
    "refuses %s with the exact code and dispatches nothing",
    async (_case, request, code, fragment) => {
      const stack = await startStack();
      const voxgate = client(stack.publicUrl, "grpc-web", "1.1");
      const error = await failureOf(() => voxgate.tts.synthesize(request));
      expect(error.code).toBe(code);
      expect(error.rawMessage).toContain(fragment);
      expect(stack.engine.calls).toEqual([]);
      expect(stack.gateway.registry.get(AGENT_ID)?.callsTotal).toBe(0);
      expect(stack.gateway.registry.get(AGENT_ID)?.inFlight).toBe(0);
    },
  );

  it("converts a sample rate the backend does not speak on the gateway, to the exact length", async () => {
    const stack = await startStack();
    const voxgate = client(stack.publicUrl, "connect", "1.1");
    const clip = await voxgate.tts.synthesize({
      text: SHORT_TEXT,
      encoding: AudioEncoding.PCM,
      sampleRateHz: 22_050,
    });
    expect(clip.contentType).toBe("audio/L16; rate=22050; channels=1");
    // The engine speaks at 16000 Hz; the agent was asked for 22050 and sent its own rate.
    expect(stack.engine.calls).toHaveLength(1);
    const frames = stack.engine.expectedPcm(SHORT_TEXT).byteLength / 2;
    expect(clip.data.byteLength).toBe(Math.round((frames * 22_050) / 16_000) * 2);
    await waitFor(() => stack.gateway.registry.get(AGENT_ID)?.inFlight === 0, "the slot to free");
    expect(stack.gateway.registry.get(AGENT_ID)?.failuresTotal).toBe(0);
  });

  it("ends a running stream with an error, never a clean end, when the agent shuts down mid-stream", async () => {
    const stack = await startStack({ chunkDelayMs: 50 });
    const voxgate = client(stack.publicUrl, "connect", "1.1");
    let received = 0;
    const error = await failureOf(async () => {
      for await (const _chunk of voxgate.tts.streamSynthesize({ text: LONG_TEXT })) {
        received++;
        if (received === 1) void stack.agent.shutdown();
      }
    });
    expect(received).toBeGreaterThanOrEqual(1);
    expect(received).toBeLessThan(stack.engine.chunkCount(LONG_TEXT));
    expect(error).toBeInstanceOf(ConnectError);
    expect(error.rawMessage).toContain("agent stopped");
    await waitFor(() => stack.engine.calls[0]?.aborted === true, "the engine's signal", 2_000);
    await waitFor(() => stack.gateway.registry.get(AGENT_ID) === undefined, "the backend to leave");
  });

  it("reports an agent shutting down mid-stream as UNAVAILABLE, not CANCELED", async () => {
    const stack = await startStack({ chunkDelayMs: 50 });
    const voxgate = client(stack.publicUrl, "connect", "1.1");
    let received = 0;
    const error = await failureOf(async () => {
      for await (const _chunk of voxgate.tts.streamSynthesize({ text: LONG_TEXT })) {
        received++;
        if (received === 1) void stack.agent.shutdown();
      }
    });
    expect(error.code).toBe(Code.Unavailable);
  });

  it("re-registers after its gateway restarts on the same agent port", async () => {
    const first = await startGateway();
    const { agent, engine } = startAgent(first.agentPort);
    await waitFor(() => first.gateway.registry.get(AGENT_ID)?.state === BackendState.READY, "join");
    await first.gateway.close(500);
    await waitFor(
      () => agent.state === "backoff" || agent.state === "connecting",
      "the agent to notice",
    );

    const second = await startGateway(silent, first.agentPort);
    expect(second.agentPort).toBe(first.agentPort);
    await waitFor(
      () => second.gateway.registry.get(AGENT_ID)?.state === BackendState.READY,
      "the agent to rejoin",
    );
    await waitFor(() => agent.state === "connected", "the agent to be welcomed");
    const voxgate = client(second.publicUrl, "grpc", "2");
    const clip = await voxgate.tts.synthesize({ text: SHORT_TEXT });
    expect(
      Buffer.from(clip.data.subarray(WAV_HEADER_BYTES)).equals(
        Buffer.from(engine.expectedPcm(SHORT_TEXT)),
      ),
    ).toBe(true);
  });

  it("reports TtsService health from the registry: NOT_SERVING without a ready agent", async () => {
    const { gateway, publicUrl, agentPort } = await startGateway();
    const voxgate = client(publicUrl, "grpc", "2");
    const status = async () =>
      (await voxgate.health.check({ service: "voxgate.v1.TtsService" })).status;
    expect(await status()).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
    const { agent } = startAgent(agentPort);
    await waitFor(() => gateway.registry.get(AGENT_ID)?.state === BackendState.READY, "the agent");
    expect(await status()).toBe(HealthCheckResponse_ServingStatus.SERVING);
    await agent.shutdown();
    await waitFor(() => gateway.registry.get(AGENT_ID) === undefined, "the agent to leave");
    expect(await status()).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
  });
});
