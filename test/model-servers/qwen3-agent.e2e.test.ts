/**
 * End to end with real processes and cloning: a gateway, and an agent started with
 * `--engine qwen3-http --engine-url <fake>` in front of a fake Qwen3-TTS local server in this
 * process. A voice is cloned through the gateway and then spoken: the prompt the model server
 * receives is the one it made, and the client hears the audio of that prompt.
 */
import { mkdtemp, rm } from "node:fs/promises";
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
import { type FakeQwen3TtsServer, renderTone, startFakeQwen3TtsServer } from "./index.js";

describe("agent --engine qwen3-http: clone through the gateway, then speak", () => {
  let fake: FakeQwen3TtsServer;
  let gateway: GatewayProcess;
  let agent: VoxgateProcess;
  let dir = "";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "voxgate-qwen3-e2e-"));
    fake = await startFakeQwen3TtsServer();
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
      },
    });
    const started = startAgentProcess(gateway, "qwen-box", {
      VOXGATE_AGENT_ENGINE: "qwen3-http",
      VOXGATE_AGENT_ENGINE_URL: fake.url,
      VOXGATE_AGENT_ENGINE_MODEL_SIZE: "0.6b",
      VOXGATE_AGENT_PROMPT_CACHE_DIR: join(dir, "prompts"),
      VOXGATE_GATEWAY_KEEPALIVE_TIMEOUT_MS: "120000",
    });
    agent = started.proc;
    await started.connected;
  }, 180_000);

  afterAll(async () => {
    await agent?.stop("SIGTERM");
    await gateway?.proc.stop("SIGTERM");
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  // On a loaded machine the agent can be briefly dropped and re-admitted (PENDING until its next
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

  it("speaks a cloned voice with the prompt the model server made", async () => {
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
    expect(fake.promptsCreated).toHaveLength(1);

    const text = "Read by the cloned narrator.";
    const spoken = await call("/v1/audio/speech", {
      model: "qwen3-tts",
      voice: voice.id,
      input: text,
      response_format: "pcm",
    });
    const audio = Buffer.from(await spoken.arrayBuffer());
    expect(spoken.status, audio.toString("utf8", 0, 300)).toBe(200);
    const made = fake.promptsCreated[0] as Uint8Array;
    expect(fake.promptsReceived).toHaveLength(1);
    expect(Buffer.from(fake.promptsReceived[0] as Uint8Array).equals(Buffer.from(made))).toBe(true);
    expect(audio.equals(Buffer.from(fake.expectedPromptPcm(text, made)))).toBe(true);
  }, 120_000);
});
