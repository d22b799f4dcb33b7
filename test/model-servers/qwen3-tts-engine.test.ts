/**
 * The qwen3-http engine against a fake of the predecessor's Qwen3-TTS local server
 * (`server/local_server.py` routes and fields) on 127.0.0.1: preset voices, voice design, the
 * clone round trip through the server's prompt store directory, a prompt delivered to a second
 * server that never saw it, and the sample rate taken from the server's WAV.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeWavHeader } from "../../services/audio/wav.js";
import {
  isEngineInputError,
  isEngineUnavailableError,
  isUnknownVoiceError,
} from "../../services/engines/engine-errors.js";
import {
  createQwen3TtsEngine,
  type Qwen3TtsEngineOptions,
} from "../../services/engines/model-server/index.js";
import type { EngineAudioChunk, TtsEngine } from "../../services/engines/tts-engine.js";
import { closeAfterEach, collectPcm, failureOf, speechRequest } from "./engine-test-support.js";
import { type FakeQwen3TtsServer, renderTone, startFakeQwen3TtsServer } from "./index.js";

const API_KEY = "qwen-local-key";
const opened = closeAfterEach();
let root = "";
let count = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "voxgate-qwen3-engine-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function setup(
  options: Partial<Qwen3TtsEngineOptions> = {},
  fakeOptions: Omit<Parameters<typeof startFakeQwen3TtsServer>[0], "promptsDir"> = {},
): Promise<{ fake: FakeQwen3TtsServer; engine: TtsEngine }> {
  const promptsDir = join(root, `server-${count++}`);
  const fake = await startFakeQwen3TtsServer({ apiKey: API_KEY, promptsDir, ...fakeOptions });
  opened.push(fake);
  const engine = await createQwen3TtsEngine({
    baseUrl: fake.url,
    apiKey: API_KEY,
    promptsDir,
    ...options,
  });
  opened.push(engine);
  return { fake, engine };
}

// A real WAV file as reference audio: one second of 220 Hz at 24 kHz.
const reference = Buffer.concat([
  encodeWavHeader({ sampleRateHz: 24_000, channels: 1, dataBytes: 48_000 }),
  renderTone(220, 24_000, 24_000),
]);

async function chunksOf(engine: TtsEngine, text: string, extra = {}): Promise<EngineAudioChunk[]> {
  const out: EngineAudioChunk[] = [];
  for await (const chunk of engine.synthesize(
    speechRequest(text, extra),
    new AbortController().signal,
  )) {
    out.push(chunk);
  }
  return out;
}

describe("qwen3-http engine", () => {
  it("describes a cloning, voice-designing qwen3-tts engine with the server's voices", async () => {
    const { engine, fake } = await setup({ modelSize: "0.6b" });
    expect(engine.info).toMatchObject({
      id: "qwen3-tts",
      modelFamily: "qwen3-tts",
      modelSize: "0.6b",
      supportsCloning: true,
      modes: ["voice_design"],
    });
    expect(engine.info.voices.map((v) => v.id)).toEqual(["vivian", "ryan"]);
    expect(fake.requests[0]?.path).toBe("/api/v1/tts/voices");
  });

  it("uses the built-in speakers when the server has no voice list; no cloning without the prompts dir", async () => {
    const { engine } = await setup({ promptsDir: "" }, { knobs: { voices: undefined } });
    expect(engine.info.voices).toHaveLength(9);
    expect(engine.info.supportsCloning).toBe(false);
    expect(engine.createClonePrompt).toBeUndefined();
  });

  it("speaks a preset voice through /api/v1/tts/synthesize, exact PCM", async () => {
    const { fake, engine } = await setup();
    const pcm = await collectPcm(
      engine,
      speechRequest("Good evening.", { voiceId: "ryan", instructions: "warm" }),
    );
    expect(pcm.equals(fake.expectedPcm("Good evening.", "ryan"))).toBe(true);
    const sent = fake.requests.find((r) => r.path === "/api/v1/tts/synthesize");
    expect(sent?.body).toMatchObject({
      text: "Good evening.",
      voice_id: "ryan",
      instructions: "warm",
      format: "wav",
    });
    expect(sent?.headers.authorization).toBe(`Bearer ${API_KEY}`);
  });

  it("takes the sample rate from the server's WAV, not from its setting", async () => {
    const { fake, engine } = await setup({ sampleRateHz: 24_000 }, { sampleRateHz: 22_050 });
    const chunks = await chunksOf(engine, "At 22.05 kHz.", { voiceId: "vivian" });
    expect(chunks[0]?.format).toEqual({ sampleRateHz: 22_050, channels: 1 });
    const pcm = Buffer.concat(chunks.map((c) => c.pcm));
    expect(pcm.equals(fake.expectedPcm("At 22.05 kHz.", "vivian"))).toBe(true);
  });

  it("designs a voice from the instructions with params.mode = voice_design", async () => {
    const { fake, engine } = await setup();
    const instruct = "a calm, low female voice";
    const pcm = await collectPcm(
      engine,
      speechRequest("Designed.", {
        instructions: instruct,
        params: { mode: "voice_design" },
        language: "en",
      }),
    );
    expect(pcm.equals(fake.expectedDesignPcm("Designed.", instruct))).toBe(true);
    expect(fake.requests.at(-1)?.body).toEqual({
      text: "Designed.",
      instruct,
      language: "English",
      format: "wav",
    });
    const missing = await failureOf(
      collectPcm(engine, speechRequest("x", { params: { mode: "voice_design" } })),
    );
    expect(isEngineInputError(missing)).toBe(true);
  });

  it("clones through the server's prompt store; a second server that never saw the prompt speaks it", async () => {
    const { fake, engine } = await setup();
    const created = await engine.createClonePrompt?.(
      {
        referenceAudio: reference,
        contentType: "audio/wav",
        referenceText: "One second of a tone.",
        language: "en",
      },
      new AbortController().signal,
    );
    expect(created?.contentType).toBe("application/x-qwen3-tts-prompt");
    const prompt = created?.prompt as Uint8Array;
    // The bytes are the file the server saved, as its own store keeps it.
    expect(Buffer.from(prompt).equals(Buffer.from(fake.promptsCreated[0] as Uint8Array))).toBe(
      true,
    );
    const createBody = fake.requests.find((r) => r.path === "/api/v1/voices/clone-prompt")
      ?.body as Record<string, unknown>;
    expect(Buffer.from(String(createBody.ref_audio_base64), "base64").equals(reference)).toBe(true);
    expect(createBody.ref_text).toBe("One second of a tone.");
    expect(createBody.name).toMatch(/^vx-[0-9a-f]{32}$/);

    const other = await setup();
    const digest = "d".repeat(64);
    const text = "Spoken with the cloned voice.";
    const pcm = await collectPcm(
      other.engine,
      speechRequest(text, { clonePrompt: { digest, bytes: prompt } }),
    );
    expect(pcm.equals(other.fake.expectedPromptPcm(text, prompt))).toBe(true);
    expect(pcm.equals(other.fake.expectedPcm(text, "vivian"))).toBe(false);
    const sent = other.fake.requests.find((r) => r.path === "/api/v1/tts/clone-prompt");
    expect(sent?.body).toEqual({
      text,
      voice_prompt: `vx-${"d".repeat(32)}`,
      language: "Auto",
      format: "wav",
    });
    // The prompt reached the second server as a file in its store, never as a URL.
    expect(await readdir(other.fake.promptsDir)).toEqual([`vx-${"d".repeat(32)}.prompt`]);
    expect(JSON.stringify(sent?.body)).not.toMatch(/https?:/);
  });

  it("maps the server's errors: unknown voice, bad prompt file, missing prompts dir", async () => {
    const { fake, engine } = await setup(
      { voices: ["vivian", "serena"] },
      { knobs: { voices: undefined } },
    );
    fake.knobs.voices = ["vivian"];
    const err = await failureOf(collectPcm(engine, speechRequest("Hi", { voiceId: "serena" })));
    expect(isUnknownVoiceError(err)).toBe(true);
    const foreign = await failureOf(
      collectPcm(
        engine,
        speechRequest("Hi", {
          clonePrompt: { digest: "e".repeat(64), bytes: new Uint8Array([1, 2, 3]) },
        }),
      ),
    );
    expect(foreign.message).toContain("invalid load key");
    const bare = await setup({ promptsDir: "" });
    const noDir = await failureOf(
      collectPcm(
        bare.engine,
        speechRequest("Hi", {
          clonePrompt: { digest: "f".repeat(64), bytes: new Uint8Array([1]) },
        }),
      ),
    );
    expect(isEngineUnavailableError(noDir)).toBe(true);
    expect(noDir.message).toContain("VOXGATE_AGENT_ENGINE_PROMPTS_DIR");
  });
});
