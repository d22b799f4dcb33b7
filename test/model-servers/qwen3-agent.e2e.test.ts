/**
 * End to end with real processes and cloning: a gateway and two agents started with
 * `--engine qwen3-http`, each in front of its own fake of the predecessor's Qwen3-TTS local server
 * (`server/local_server.py` routes) with its own prompt store directory. A voice is cloned on the
 * first; with the first agent gone, the second speaks it: the gateway streams the prompt to the
 * agent, which puts it in its server's store and names it (no URL reaches agent or server). Voice
 * design is routed by its capability (FEATURE_VOICE_DESIGN) through `params.mode`.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeWavHeader } from "../../services/audio/wav.js";
import { type VoxgateProcess, waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";
import {
  createQwen3V1Worker,
  createRunPodEmulator,
  type Qwen3V1Worker,
  type RunPodEmulator,
} from "../runpod-emulator/index.js";
import { type FakeQwen3TtsServer, renderTone, startFakeQwen3TtsServer } from "./index.js";

describe("agents --engine qwen3-http: clone on one, speak on another", () => {
  let first: FakeQwen3TtsServer;
  let second: FakeQwen3TtsServer;
  let gateway: GatewayProcess;
  let agentA: VoxgateProcess;
  let agentB: VoxgateProcess;
  let worker: Qwen3V1Worker;
  let emulator: RunPodEmulator;
  let dir = "";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "voxgate-qwen3-e2e-"));
    first = await startFakeQwen3TtsServer({ promptsDir: join(dir, "store-a") });
    second = await startFakeQwen3TtsServer({ promptsDir: join(dir, "store-b") });
    worker = createQwen3V1Worker({ apiKey: "worker-own-key" });
    emulator = createRunPodEmulator({ apiKey: "rp-key-qwen3-v1", handler: worker.handler });
    const endpoint = await emulator.listen();
    gateway = await startGatewayProcess({
      readyTimeoutMs: 60_000,
      env: {
        VOXGATE_DATA_DIR: join(dir, "gateway"),
        // Liveness is not under test here. The gateway opens its database on the first clone,
        // which held its event loop for up to a minute on a loaded 2-core machine; the default
        // 1 s limits would drop the healthy agent meanwhile.
        VOXGATE_AGENT_KEEPALIVE_MS: "10000",
        VOXGATE_AGENT_KEEPALIVE_TIMEOUT_MS: "120000",
        VOXGATE_HEARTBEAT_MISS_LIMIT: "100",
        // The predecessor's RunPod worker, last in priority (speaks prompts only when asked).
        VOXGATE_BACKENDS_JSON: JSON.stringify([
          {
            id: "runpod-v1",
            kind: "runpod",
            endpoint,
            apiKeyEnv: "E2E_RUNPOD_KEY",
            format: "qwen3-v1",
            workerApiKeyEnv: "E2E_WORKER_KEY",
            priority: 50,
            engines: [
              {
                id: "qwen3-tts",
                model: { family: "qwen3-tts", size: "0.6b" },
                features: ["clone_prompt_synthesize", "voice_design"],
              },
            ],
          },
        ]),
        E2E_RUNPOD_KEY: "rp-key-qwen3-v1",
        E2E_WORKER_KEY: "worker-own-key",
      },
    });
    const agent = (id: string, fake: FakeQwen3TtsServer, priority: string) =>
      startAgentProcess(gateway, id, {
        VOXGATE_AGENT_ENGINE: "qwen3-http",
        VOXGATE_AGENT_ENGINE_URL: fake.url,
        VOXGATE_AGENT_ENGINE_MODEL_SIZE: "0.6b",
        VOXGATE_AGENT_ENGINE_PROMPTS_DIR: fake.promptsDir,
        VOXGATE_AGENT_PRIORITY: priority,
        VOXGATE_AGENT_PROMPT_CACHE_DIR: join(dir, `cache-${id}`),
        VOXGATE_GATEWAY_KEEPALIVE_TIMEOUT_MS: "120000",
      });
    const a = agent("qwen-a", first, "0");
    const b = agent("qwen-b", second, "1");
    agentA = a.proc;
    agentB = b.proc;
    await Promise.all([a.connected, b.connected]);
  }, 180_000);

  afterAll(async () => {
    await agentA?.stop("SIGTERM");
    await agentB?.stop("SIGTERM");
    await gateway?.proc.stop("SIGTERM");
    await first?.close();
    await second?.close();
    await emulator?.close();
    await rm(dir, { recursive: true, force: true });
  });

  // On a loaded machine an agent can be briefly dropped and re-admitted (PENDING until its next
  // heartbeat); a 503 then means "not yet", so ask again. Every other answer is final.
  const call = (path: string, body: Record<string, unknown>) =>
    waitFor(
      async () => {
        const response = await fetch(`${gateway.url}${path}`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${gateway.clientToken}`,
            "content-type": "application/json",
          },
          body: JSON.stringify(body),
        });
        if (response.status !== 503) return response;
        await response.body?.cancel();
        return undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: `${path} without 503` },
    );

  it("designs a voice on a backend that declares voice design", async () => {
    const response = await call("/v1/speech:synthesize", {
      text: "A designed voice.",
      instructions: "an old sailor, gravelly",
      params: { mode: "voice_design" },
      encoding: "AUDIO_ENCODING_PCM",
    });
    const audio = Buffer.from(await response.arrayBuffer());
    expect(response.status, audio.toString("utf8", 0, 300)).toBe(200);
    expect(
      audio.equals(
        Buffer.from(first.expectedDesignPcm("A designed voice.", "an old sailor, gravelly")),
      ),
    ).toBe(true);
  });

  it("clones on the first agent and speaks the voice on the second", async () => {
    const reference = Buffer.concat([
      encodeWavHeader({ sampleRateHz: 24_000, channels: 1, dataBytes: 96_000 }),
      renderTone(180, 48_000, 24_000),
    ]);
    const created = await call("/v1/voices", {
      name: "narrator",
      reference_audio: reference.toString("base64"),
      reference_text: "Two seconds of a low tone.",
      language: "en",
    });
    const createdText = await created.text();
    expect(created.status, createdText).toBe(200);
    const voice = (JSON.parse(createdText) as { voice: { id: string } }).voice;
    expect(first.promptsCreated).toHaveLength(1);
    expect(second.promptsCreated).toHaveLength(0);

    // The first agent leaves; only the second can speak the voice now.
    await agentA.stop("SIGTERM");
    const text = "Read by the cloned narrator.";
    const spoken = await call("/v1/audio/speech", {
      model: "qwen3-tts",
      voice: voice.id,
      input: text,
      response_format: "pcm",
    });
    const audio = Buffer.from(await spoken.arrayBuffer());
    expect(spoken.status, audio.toString("utf8", 0, 300)).toBe(200);
    expect(spoken.headers.get("x-voxgate-backend")).toBe("qwen-b");
    const made = first.promptsCreated[0] as Uint8Array;
    expect(second.promptsReceived).toHaveLength(1);
    expect(Buffer.from(second.promptsReceived[0] as Uint8Array).equals(Buffer.from(made))).toBe(
      true,
    );
    expect(audio.equals(Buffer.from(second.expectedPromptPcm(text, made)))).toBe(true);
    expect((await readdir(second.promptsDir)).filter((f) => f.endsWith(".prompt"))).toHaveLength(1);
    const bodies = second.requests.map((r) => JSON.stringify(r.body ?? {})).join("\n");
    expect(bodies).not.toMatch(/https?:\/\//);

    // With no agent left, the predecessor's RunPod worker speaks it: the worker lacks the
    // prompt, so it is made there from the voice's reference (inside the job), then spoken.
    await agentB.stop("SIGTERM");
    const onRunPod = await call("/v1/speech:synthesize", {
      text,
      voice: voice.id,
      encoding: "AUDIO_ENCODING_PCM",
    });
    const runpodAudio = Buffer.from(await onRunPod.arrayBuffer());
    expect(onRunPod.status, runpodAudio.toString("utf8", 0, 300)).toBe(200);
    expect(onRunPod.headers.get("x-voxgate-backend")).toBe("runpod-v1");
    expect(runpodAudio.equals(Buffer.from(worker.expectedPromptPcm(text, made)))).toBe(true);
    expect(worker.inputs.map((i) => i.endpoint)).toEqual([
      "/api/v1/tts/clone-prompt",
      "/api/v1/voices/clone-prompt",
      "/api/v1/tts/clone-prompt",
    ]);
    const create = worker.inputs[1] as { body: Record<string, unknown>; api_key: string };
    expect(Buffer.from(String(create.body.audio), "base64").equals(reference)).toBe(true);
    expect(create.api_key).toBe("worker-own-key");
    expect(JSON.stringify(worker.inputs)).not.toMatch(/https?:\/\//);
  }, 180_000);
});
