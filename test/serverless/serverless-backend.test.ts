/**
 * The serverless backend end to end: a real gateway (127.0.0.1:0) configured through its settings
 * (`VOXGATE_BACKENDS_JSON`, the API key from the variable `apiKeyEnv` names) with a backend pointing
 * at the RunPod emulator, whose worker runs the real CPU engine; called with the typed voxgate
 * client. Also the priority between a real agent and the serverless backend.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import type { HttpBody } from "../../gen/google/api/httpbody_pb.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import { ServingState } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { Agent, agentLinkOptionsFromSettings } from "../../services/agent/agent.js";
import { agentSettings } from "../../services/agent/agent-settings.js";
import { parseWav, WAV_HEADER_BYTES } from "../../services/audio/wav.js";
import {
  createServerlessBackend,
  type ServerlessBackendOptions,
  serverlessEntryDefaults,
} from "../../services/backends/index.js";
import { isSettingsError, loadSettings, settingDefaults } from "../../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../../services/engine-host/engine-host-handler.js";
import { createEngineHost, describeEngines } from "../../services/engine-host/index.js";
import { createEspeakEngine, type TtsEngine } from "../../services/engines/index.js";
import {
  createGateway,
  type Gateway,
  type GatewayAddresses,
  gatewayOptionsFromSettings,
  gatewaySettings,
} from "../../services/gateway/index.js";
import {
  createRunPodEmulator,
  createTtsWorkerHandler,
  type RunPodEmulator,
} from "../runpod-emulator/index.js";

const API_KEY = "rp_backend-test-key-77a1";
const KEY_ENV = "VOXGATE_TEST_RUNPOD_KEY";
const CLIENT_TOKEN = "vxg_serverless-client-token";
const AGENT_TOKEN = "vxg_serverless-agent-token";
const BACKEND_ID = "runpod-a";
const silent = pino({ level: "silent" });

const TEXT = "Hello from a serverless worker. It speaks two sentences.";
const LONG_TEXT = Array.from({ length: 16 }, (_, i) => `Sentence number ${i + 1}.`).join(" ");

let engine: TtsEngine;
let emulator: RunPodEmulator;
let endpointUrl = "";
const expectedPcm = new Map<string, Buffer>();

const openClients: VoxgateClient[] = [];
const openGateways: Gateway[] = [];
const openAgents: { agent: Agent; run: Promise<void> }[] = [];

beforeAll(async () => {
  engine = await createEspeakEngine();
  emulator = createRunPodEmulator({
    apiKey: API_KEY,
    workers: 2,
    handler: createTtsWorkerHandler({ engine, chunkDelayMs: () => emulator.faults.chunkDelayMs }),
  });
  endpointUrl = await emulator.listen();
}, 60_000);

afterAll(async () => {
  await emulator?.close();
  await engine?.close();
});

afterEach(async () => {
  for (const client of openClients.splice(0)) client.close();
  await Promise.all(
    openAgents.splice(0).map(async ({ agent, run }) => {
      await agent.shutdown();
      await run;
    }),
  );
  await Promise.all(openGateways.splice(0).map((gateway) => gateway.close(500)));
  // No test may leave a remote job behind.
  await emulator.settled(10_000);
  emulator.faults.chunkDelayMs = 0;
  emulator.faults.startDelayMs = 0;
  emulator.faults.failNext = 0;
});

/** The engine's own PCM for `text`, what the serverless path must deliver byte for byte. */
async function pcmOf(text: string): Promise<Buffer> {
  const known = expectedPcm.get(text);
  if (known) return known;
  const parts: Uint8Array[] = [];
  for await (const chunk of engine.synthesize(
    { text, voiceId: "", speed: 1, instructions: "" },
    new AbortController().signal,
  )) {
    parts.push(chunk.pcm);
  }
  const pcm = Buffer.concat(parts);
  expectedPcm.set(text, pcm);
  return pcm;
}

function backendEntry(overrides: Record<string, unknown> = {}) {
  return {
    id: BACKEND_ID,
    kind: "runpod",
    endpoint: endpointUrl,
    apiKeyEnv: KEY_ENV,
    priority: 10,
    slots: 2,
    pollIntervalMinMs: 20,
    pollIntervalMaxMs: 200,
    engines: [
      {
        id: "espeak-ng",
        model: { family: "espeak-ng" },
        features: ["synthesize"],
        sampleRateHz: engine.info.format.sampleRateHz,
        voices: [{ id: "en-us", name: "English (US)", languages: ["en-US"] }],
      },
    ],
    ...overrides,
  };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Starts a gateway from settings, as `voxgate gateway` does; its prober readies the backend. */
async function startGateway(
  backends: unknown[] = [backendEntry()],
): Promise<{ gateway: Gateway } & GatewayAddresses> {
  const env = {
    VOXGATE_PORT: "0",
    VOXGATE_AGENT_PORT: "0",
    VOXGATE_TOKEN: CLIENT_TOKEN,
    VOXGATE_AGENT_TOKEN: AGENT_TOKEN,
    VOXGATE_BACKENDS_JSON: JSON.stringify(backends),
    [KEY_ENV]: API_KEY,
  };
  const settings = loadSettings(gatewaySettings, { argv: [], env });
  const gateway = createGateway(gatewayOptionsFromSettings(settings, silent, env));
  openGateways.push(gateway);
  return { gateway, ...(await gateway.listen()) };
}

async function readyStack(backends?: unknown[]) {
  const stack = await startGateway(backends);
  await waitFor(
    () => stack.gateway.registry.get(BACKEND_ID)?.state === BackendState.READY,
    "the serverless backend to be READY",
  );
  const voxgate = createVoxgateClient({ baseUrl: stack.publicUrl, token: CLIENT_TOKEN });
  openClients.push(voxgate);
  return { ...stack, voxgate };
}

async function failureOf(call: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call should have failed");
}

async function drain(stream: AsyncIterable<HttpBody>): Promise<HttpBody[]> {
  const chunks: HttpBody[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

function jobsSince(count: number) {
  return emulator.jobs().slice(count);
}

describe("serverless backend through the gateway", () => {
  it("registers from VOXGATE_BACKENDS_JSON and answers Health from GET /health", async () => {
    const { gateway } = await readyStack();
    const backend = gateway.registry.get(BACKEND_ID);
    expect(backend?.address).toBe(endpointUrl);
    expect(backend?.priority).toBe(10);
    expect(backend?.capabilities.slots).toBe(2);
    expect(backend?.capabilities.engines[0]?.features).toEqual([Feature.SYNTHESIZE]);
    const health = await backend?.client.health({});
    expect(health?.state).toBe(ServingState.SERVING);
    expect(health?.load?.slots).toBe(2);
    expect(health?.message).toContain("workers idle");
    const shown = JSON.stringify(gateway.registry.list(), (_key, value: unknown) =>
      typeof value === "bigint" ? String(value) : value,
    );
    expect(shown).toContain(BACKEND_ID);
    expect(shown).not.toContain(API_KEY);
  });

  it("returns a whole clip: a WAV header and exactly the engine's PCM, via /run and /status", async () => {
    const { voxgate } = await readyStack();
    const before = emulator.jobs().length;
    const headers: Headers[] = [];
    const started = performance.now();
    const clip = await voxgate.tts.synthesize(
      { text: TEXT },
      { onHeader: (header) => headers.push(header) },
    );
    const totalMs = performance.now() - started;
    expect(headers[0]?.get("x-voxgate-backend")).toBe(BACKEND_ID);
    expect(clip.contentType).toBe("audio/wav");
    const wav = parseWav(clip.data);
    expect(wav.sampleRateHz).toBe(engine.info.format.sampleRateHz);
    expect(wav.channels).toBe(1);
    const pcm = Buffer.from(clip.data.subarray(wav.dataOffset));
    expect(pcm.equals(await pcmOf(TEXT))).toBe(true);
    const jobs = jobsSince(before);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.via).toBe("run");
    expect(jobs[0]?.status).toBe("COMPLETED");
    expect(jobs[0]?.input).toMatchObject({ text: TEXT, encoding: "pcm_s16le", speed: 1 });
    const afterEndMs = totalMs - ((jobs[0]?.endedAt ?? 0) - (jobs[0]?.submittedAt ?? 0));
    console.log(
      `[figures] serverless run+poll (fast job): ${totalMs.toFixed(0)} ms total, ${afterEndMs.toFixed(0)} ms after the job ended`,
    );
  });

  it("streams the job's audio: streaming WAV header first, then ≤ 64 KiB slices equal to the engine's PCM", async () => {
    const { voxgate, gateway } = await readyStack();
    const chunks = await drain(voxgate.tts.streamSynthesize({ text: LONG_TEXT }));
    expect(chunks[0]?.contentType).toBe("audio/wav");
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.slice(1).every((c) => c.data.byteLength <= 64 * 1024)).toBe(true);
    const all = Buffer.concat(chunks.map((c) => c.data));
    expect(all.subarray(0, 4).toString()).toBe("RIFF");
    expect(all.subarray(WAV_HEADER_BYTES).equals(await pcmOf(LONG_TEXT))).toBe(true);
    await waitFor(() => gateway.registry.get(BACKEND_ID)?.inFlight === 0, "the slot to free");
  });

  it("cancels the remote job promptly when the caller goes away, and frees the slot", async () => {
    const { voxgate, gateway } = await readyStack();
    // 16 chunks × 500 ms: the job would run ~8 s, so CANCELLED below proves the cancel came early;
    // the time it took is printed as a figure (~10 ms on a quiet machine) and only bounded loosely.
    emulator.faults.chunkDelayMs = 500;
    const before = emulator.jobs().length;
    const controller = new AbortController();
    const call = failureOf(() =>
      drain(voxgate.tts.streamSynthesize({ text: LONG_TEXT }, { signal: controller.signal })),
    );
    await waitFor(() => jobsSince(before)[0]?.status === "IN_PROGRESS", "the job to start");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const abortedAt = performance.now();
    controller.abort();
    const error = await call;
    expect(error.code).toBe(Code.Canceled);
    await waitFor(() => jobsSince(before)[0]?.cancelRequestedAt !== undefined, "/cancel", 20_000);
    const job = jobsSince(before)[0];
    const cancelMs = (job?.cancelRequestedAt ?? Infinity) - abortedAt;
    console.log(
      `[figures] serverless cancel propagation (caller abort → /cancel): ${cancelMs.toFixed(1)} ms`,
    );
    expect(cancelMs).toBeLessThan(5_000);
    expect(job?.status).toBe("CANCELLED");
    expect(job?.handlerAborted).toBe(true);
    expect(jobsSince(before)).toHaveLength(1);
    await waitFor(() => gateway.registry.get(BACKEND_ID)?.inFlight === 0, "the registry slot");
    expect(emulator.unfinished()).toEqual([]);
    expect(gateway.registry.get(BACKEND_ID)?.failuresTotal).toBe(0);
  });

  it("cancels a job still queued (cold start) when the caller goes away", async () => {
    const { voxgate, gateway } = await readyStack();
    // A 10 s cold start: the abort 100 ms after queueing lands long before the job could start.
    emulator.faults.startDelayMs = 10_000;
    const before = emulator.jobs().length;
    const controller = new AbortController();
    const call = failureOf(() =>
      voxgate.tts.synthesize({ text: TEXT }, { signal: controller.signal }),
    );
    await waitFor(() => jobsSince(before)[0] !== undefined, "the job to be queued");
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    expect((await call).code).toBe(Code.Canceled);
    await waitFor(() => jobsSince(before)[0]?.status === "CANCELLED", "CANCELLED", 20_000);
    expect(jobsSince(before)[0]?.startedAt).toBeUndefined();
    await waitFor(() => gateway.registry.get(BACKEND_ID)?.inFlight === 0, "the registry slot");
  });

  it("ends with DEADLINE_EXCEEDED and cancels the job when the client's deadline passes", async () => {
    const { voxgate, gateway } = await readyStack();
    // 16 chunks × 500 ms: ~8 s of work, well past the 700 ms deadline even on a loaded machine.
    emulator.faults.chunkDelayMs = 500;
    const before = emulator.jobs().length;
    const started = performance.now();
    const error = await failureOf(() =>
      drain(voxgate.tts.streamSynthesize({ text: LONG_TEXT }, { timeoutMs: 700 })),
    );
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(performance.now() - started).toBeLessThan(6_000);
    await waitFor(() => jobsSince(before)[0]?.cancelRequestedAt !== undefined, "/cancel", 20_000);
    const job = jobsSince(before)[0];
    // The job's executionTimeout is the call's deadline too, so RunPod would end it regardless.
    expect(job?.executionTimeoutMs).toBeLessThanOrEqual(1_000);
    expect(["CANCELLED", "TIMED_OUT"]).toContain(job?.status);
    await waitFor(() => gateway.registry.get(BACKEND_ID)?.inFlight === 0, "the registry slot");
  });

  it("fails with UNAVAILABLE and the worker's error text when the job FAILS", async () => {
    const { voxgate, gateway } = await readyStack();
    emulator.faults.failNext = 1;
    emulator.faults.failMessage = "CUDA out of memory";
    const error = await failureOf(() => voxgate.tts.synthesize({ text: TEXT }));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toContain("CUDA out of memory");
    expect(error.rawMessage).toContain(BACKEND_ID);
    await waitFor(() => gateway.registry.get(BACKEND_ID)?.inFlight === 0, "the registry slot");
  });

  it("goes from runsync to /status polling for a slow job, and measures both paths", async () => {
    const { voxgate } = await readyStack([backendEntry({ runsyncWaitMs: 1_000 })]);
    // Fast: one runsync request, no polling.
    let before = emulator.jobs().length;
    let requests = emulator.requests().length;
    let started = performance.now();
    let clip = await voxgate.tts.synthesize({ text: TEXT });
    const runsyncMs = performance.now() - started;
    expect(Buffer.from(clip.data.subarray(WAV_HEADER_BYTES)).equals(await pcmOf(TEXT))).toBe(true);
    let paths = emulator
      .requests()
      .slice(requests)
      .map((r) => r.path.split("?")[0]);
    expect(jobsSince(before)[0]?.via).toBe("runsync");
    expect(paths.filter((p) => p?.includes("/status/"))).toEqual([]);

    // Slow: runsync answers IN_PROGRESS after its wait, then polling finds the end.
    emulator.faults.chunkDelayMs = 120;
    before = emulator.jobs().length;
    requests = emulator.requests().length;
    started = performance.now();
    clip = await voxgate.tts.synthesize({ text: LONG_TEXT });
    const slowMs = performance.now() - started;
    expect(Buffer.from(clip.data.subarray(WAV_HEADER_BYTES)).equals(await pcmOf(LONG_TEXT))).toBe(
      true,
    );
    paths = emulator
      .requests()
      .slice(requests)
      .map((r) => r.path.split("?")[0]);
    expect(paths[0]).toMatch(/\/runsync$/);
    expect(paths.filter((p) => p?.includes("/status/")).length).toBeGreaterThan(0);
    expect(jobsSince(before)).toHaveLength(1);
    const job = jobsSince(before)[0];
    const overMs = slowMs - ((job?.endedAt ?? 0) - (job?.submittedAt ?? 0));
    console.log(
      `[figures] serverless runsync (fast job): ${runsyncMs.toFixed(0)} ms; runsync→polling (slow job): ${slowMs.toFixed(0)} ms total, ${overMs.toFixed(0)} ms after the job ended`,
    );
    // Generous: the point is that polling finds the end, not how fast (a figure above).
    expect(overMs).toBeLessThan(10_000);
  });

  it("in runsync mode, still cancels a job whose caller left during the wait, once runsync names it", async () => {
    const { voxgate, gateway } = await readyStack([backendEntry({ runsyncWaitMs: 1_000 })]);
    // 16 chunks × 600 ms: the job would run ~10 s; the cancel comes when runsync's 1 s wait ends.
    emulator.faults.chunkDelayMs = 600;
    const before = emulator.jobs().length;
    const controller = new AbortController();
    const call = failureOf(() =>
      voxgate.tts.synthesize({ text: LONG_TEXT }, { signal: controller.signal }),
    );
    await waitFor(() => jobsSince(before)[0]?.status === "IN_PROGRESS", "the job to start");
    const abortedAt = performance.now();
    controller.abort();
    expect((await call).code).toBe(Code.Canceled);
    // The slot frees at once; the job is cancelled when runsync's wait ends and names it.
    await waitFor(() => gateway.registry.get(BACKEND_ID)?.inFlight === 0, "the slot", 20_000);
    await waitFor(() => jobsSince(before)[0]?.status === "CANCELLED", "CANCELLED", 20_000);
    const job = jobsSince(before)[0];
    const cancelMs = (job?.cancelRequestedAt ?? Infinity) - abortedAt;
    console.log(
      `[figures] serverless cancel in runsync mode (wait 1000 ms): ${cancelMs.toFixed(0)} ms`,
    );
    expect(cancelMs).toBeLessThan(6_000);
  });

  it("routes to the agent (priority 0) while it is up, then to the serverless backend (priority 10)", async () => {
    const { gateway, voxgate, agentPort } = await readyStack();
    const slots = 1;
    const host = createEngineHost({
      ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
      engines: [engine],
      slots,
    });
    const agent = new Agent({
      ...agentLinkOptionsFromSettings(settingDefaults(agentSettings)),
      gatewayAddress: `127.0.0.1:${agentPort}`,
      token: AGENT_TOKEN,
      agentId: "gpu-box",
      version: "test",
      host,
      capabilities: describeEngines([engine], slots),
      backoff: { initialDelayMs: 50, maxDelayMs: 200 },
      drainTimeoutMs: 5_000,
      log: silent,
    });
    const run = agent.run();
    openAgents.push({ agent, run });
    await waitFor(() => gateway.registry.get("gpu-box")?.state === BackendState.READY, "agent");

    const served = async () => {
      const headers: Headers[] = [];
      const clip = await voxgate.tts.synthesize(
        { text: TEXT },
        { onHeader: (h) => headers.push(h) },
      );
      expect(Buffer.from(clip.data.subarray(WAV_HEADER_BYTES)).equals(await pcmOf(TEXT))).toBe(
        true,
      );
      return headers[0]?.get("x-voxgate-backend");
    };
    const before = emulator.jobs().length;
    expect(await served()).toBe("gpu-box");
    expect(await served()).toBe("gpu-box");
    expect(jobsSince(before)).toEqual([]);

    await agent.shutdown();
    await run;
    await waitFor(() => gateway.registry.get("gpu-box") === undefined, "the agent to leave");
    expect(await served()).toBe(BACKEND_ID);
    expect(jobsSince(before)).toHaveLength(1);
  });
});

describe("serverless backend on its own", () => {
  const options = (
    overrides: Partial<ServerlessBackendOptions> = {},
  ): ServerlessBackendOptions => ({
    ...serverlessEntryDefaults(),
    id: "direct",
    endpointUrl,
    apiKey: API_KEY,
    engines: [
      {
        id: "espeak-ng",
        version: "",
        model: { family: "espeak-ng", size: "" },
        features: ["synthesize"],
        sampleRateHz: 0,
        voices: [],
      },
    ],
    pollIntervalMinMs: 20,
    pollIntervalMaxMs: 200,
    ...overrides,
  });

  it("fails clearly on a wrong API key, never showing the key, and submits nothing", async () => {
    const backend = createServerlessBackend(options({ apiKey: "rp_wrong-key-123" }));
    const before = emulator.jobs().length;
    const health = await failureOf(() => backend.client.health({}));
    expect(health.code).toBe(Code.Unavailable);
    expect(health.rawMessage).toContain("RunPod refused the API key");
    expect(health.rawMessage).toContain("HTTP 401");
    expect(health.rawMessage).not.toContain("rp_wrong-key-123");
    const call = await failureOf(() => drain2(backend.client.synthesize({ text: TEXT })));
    expect(call.code).toBe(Code.Unavailable);
    expect(call.rawMessage).toContain("RunPod refused the API key");
    expect(emulator.jobs().length).toBe(before);
  });

  it("reports Health UNAVAILABLE when GET /health fails", async () => {
    const backend = createServerlessBackend(options());
    emulator.faults.healthStatus = 503;
    try {
      const error = await failureOf(() => backend.client.health({}));
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toContain("HTTP 503");
    } finally {
      emulator.faults.healthStatus = 200;
    }
  });

  it("refuses audio over maxAudioBytes with RESOURCE_EXHAUSTED or INTERNAL, naming the limit", async () => {
    const backend = createServerlessBackend(options({ maxAudioBytes: 2_048 }));
    const error = await failureOf(() => drain2(backend.client.synthesize({ text: TEXT })));
    expect([Code.ResourceExhausted, Code.Internal]).toContain(error.code);
    expect(error.rawMessage).toContain("2048");
  });

  it("ends a job that runs over maxJobDurationMs with DEADLINE_EXCEEDED, leaving no job running", async () => {
    emulator.faults.chunkDelayMs = 200;
    const before = emulator.jobs().length;
    const backend = createServerlessBackend(options({ maxJobDurationMs: 1_000 }));
    const error = await failureOf(() => drain2(backend.client.synthesize({ text: LONG_TEXT })));
    expect(error.code).toBe(Code.DeadlineExceeded);
    await emulator.settled(3_000);
    expect(["TIMED_OUT", "CANCELLED"]).toContain(jobsSince(before)[0]?.status);
  });

  it("answers UNIMPLEMENTED for clone prompts, analysis and generation", async () => {
    const backend = createServerlessBackend(options());
    const analyze = await failureOf(() =>
      backend.client.analyzeAudio(
        (async function* () {
          yield { kind: { case: "audio" as const, value: new Uint8Array(2) } };
        })(),
      ),
    );
    expect(analyze.code).toBe(Code.Unimplemented);
    const generate = await failureOf(() => drain2(backend.client.generate({ model: "x" })));
    expect(generate.code).toBe(Code.Unimplemented);
  });
});

describe("backends setting", () => {
  const load = (env: Record<string, string>) =>
    loadSettings(gatewaySettings, { argv: [], env: { VOXGATE_PORT: "0", ...env } });

  it("refuses an inline API key, naming apiKeyEnv", () => {
    let message = "";
    try {
      load({ VOXGATE_BACKENDS_JSON: JSON.stringify([{ ...backendEntry(), apiKey: "rp_inline" }]) });
    } catch (err) {
      expect(isSettingsError(err)).toBe(true);
      message = (err as Error).message;
    }
    expect(message).toContain("API keys never go in the config");
    expect(message).not.toContain("rp_inline");
  });

  it("refuses duplicate ids, a bad endpoint and an unknown feature, all at once", () => {
    let message = "";
    try {
      load({
        VOXGATE_BACKENDS_JSON: JSON.stringify([
          backendEntry(),
          backendEntry({ endpoint: "ftp://x" }),
          backendEntry({
            id: "b",
            engines: [{ id: "e", model: { family: "f" }, features: ["fly"] }],
          }),
        ]),
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("backends from VOXGATE_BACKENDS_JSON");
    expect(message).toContain("endpoint must be an http(s) URL");
    expect(message).toMatch(/fly|Invalid option/);
  });

  it("fails at start when the variable apiKeyEnv names is unset", () => {
    const settings = load({ VOXGATE_BACKENDS_JSON: JSON.stringify([backendEntry()]) });
    expect(settings.backends[0]?.runsyncWaitMs).toBe(0);
    expect(() => gatewayOptionsFromSettings(settings, silent, {})).toThrow(
      `backend "${BACKEND_ID}": environment variable ${KEY_ENV} (apiKeyEnv) is not set`,
    );
    const options = gatewayOptionsFromSettings(settings, silent, { [KEY_ENV]: API_KEY });
    expect(options.backends?.[0]).toMatchObject({ id: BACKEND_ID, endpointUrl, apiKey: API_KEY });
  });
});

async function drain2<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}
