/**
 * The qwen3-http engine against a real fake Qwen3-TTS local server on 127.0.0.1: preset voices,
 * both answer shapes, and the clone round trip (create a prompt, then speak with it).
 */
import { describe, expect, it } from "vitest";
import { encodeWavHeader } from "../../services/audio/wav.js";
import { isEngineInputError, isUnknownVoiceError } from "../../services/engines/engine-errors.js";
import {
  createQwen3TtsEngine,
  type Qwen3TtsEngineOptions,
} from "../../services/engines/model-server/index.js";
import type { TtsEngine } from "../../services/engines/tts-engine.js";
import { closeAfterEach, collectPcm, failureOf, speechRequest } from "./engine-test-support.js";
import { deferred, type FakeQwen3TtsServer, renderTone, startFakeQwen3TtsServer } from "./index.js";

const API_KEY = "qwen-local-key";
const opened = closeAfterEach();

async function setup(
  options: Partial<Qwen3TtsEngineOptions> = {},
  knobs: Parameters<typeof startFakeQwen3TtsServer>[0] = {},
): Promise<{ fake: FakeQwen3TtsServer; engine: TtsEngine }> {
  const fake = await startFakeQwen3TtsServer({ apiKey: API_KEY, ...knobs });
  opened.push(fake);
  const engine = await createQwen3TtsEngine({ baseUrl: fake.url, apiKey: API_KEY, ...options });
  opened.push(engine);
  return { fake, engine };
}

// A real WAV file as reference audio: one second of 220 Hz at 24 kHz.
const reference = Buffer.concat([
  encodeWavHeader({ sampleRateHz: 24_000, channels: 1, dataBytes: 48_000 }),
  renderTone(220, 24_000, 24_000),
]);

describe("qwen3-http engine", () => {
  it("describes a cloning qwen3-tts engine with the server's voices", async () => {
    const { engine } = await setup({ modelSize: "0.6b" });
    expect(engine.info).toMatchObject({
      id: "qwen3-tts",
      modelFamily: "qwen3-tts",
      modelSize: "0.6b",
      supportsCloning: true,
      format: { sampleRateHz: 24_000, channels: 1 },
    });
    expect(engine.info.voices.map((v) => v.id)).toEqual(["vivian", "ryan"]);
    expect(typeof engine.createClonePrompt).toBe("function");
  });

  it("uses the built-in speakers when the server has no voice list", async () => {
    const { engine } = await setup({}, { knobs: { voices: undefined } });
    expect(engine.info.voices.map((v) => v.id)).toContain("vivian");
    expect(engine.info.voices).toHaveLength(9);
    expect(engine.info.modelSize).toBe("1.7b");
  });

  it("speaks a preset voice from a streamed WAV answer, exact PCM", async () => {
    const gate = deferred();
    const { fake, engine } = await setup({}, { knobs: { pieceBytes: 999, gate: gate.promise } });
    const iterator = engine
      .synthesize(
        speechRequest("Good evening.", { voiceId: "ryan", instructions: "warm" }),
        new AbortController().signal,
      )
      [Symbol.asyncIterator]();
    const first = await iterator.next();
    const sent = fake.requests.find((r) => r.path === "/api/v1/tts");
    expect(sent?.completed).toBe(false);
    gate.resolve();
    const chunks = [first.value?.pcm as Uint8Array];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      chunks.push(next.value.pcm);
    }
    expect(Buffer.concat(chunks).equals(fake.expectedPcm("Good evening.", "ryan"))).toBe(true);
    expect(sent?.body).toEqual({ text: "Good evening.", voice: "ryan", instruct: "warm" });
    expect(sent?.headers.authorization).toBe(`Bearer ${API_KEY}`);
  });

  it("decodes a JSON answer with base64 audio", async () => {
    const { fake, engine } = await setup({}, { knobs: { answerAsJson: true } });
    const pcm = await collectPcm(engine, speechRequest("Base64 audio", { voiceId: "vivian" }));
    expect(pcm.equals(fake.expectedPcm("Base64 audio", "vivian"))).toBe(true);
  });

  it("clones: the prompt the server returns is the prompt it receives when speaking", async () => {
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
    expect(created?.contentType).toBe("application/octet-stream");
    const prompt = created?.prompt as Uint8Array;
    expect(prompt.byteLength).toBeGreaterThan(0);
    const createRequest = fake.requests.find((r) => r.path === "/api/v1/voices/clone-prompt");
    const createBody = createRequest?.body as Record<string, string>;
    expect(Buffer.from(createBody.audio ?? "", "base64").equals(reference)).toBe(true);
    expect(createBody.ref_text).toBe("One second of a tone.");
    expect(createBody.language).toBe("en");
    expect(createBody.name).toMatch(/^voxgate-[0-9a-f]{24}$/);

    const digest = "d".repeat(64);
    const pcm = await collectPcm(
      engine,
      speechRequest("Spoken with the cloned voice.", { clonePrompt: { digest, bytes: prompt } }),
    );
    expect(fake.promptsReceived).toHaveLength(1);
    expect(Buffer.from(fake.promptsReceived[0] as Uint8Array).equals(Buffer.from(prompt))).toBe(
      true,
    );
    expect(pcm.equals(fake.expectedPromptPcm("Spoken with the cloned voice.", prompt))).toBe(true);
    // A different voice sounds different: the prompt, not a preset, chose the tone.
    expect(pcm.equals(fake.expectedPcm("Spoken with the cloned voice.", "vivian"))).toBe(false);
    const sent = fake.requests.find((r) => r.path === "/api/v1/tts/clone-prompt");
    expect((sent?.body as Record<string, unknown> | undefined)?.prompt_id).toBe(digest);
  });

  it("refuses reference audio the server cannot use, and a prompt of another model", async () => {
    const { fake, engine } = await setup();
    const png = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
    const bad = await failureOf(
      engine.createClonePrompt?.(
        { referenceAudio: png, contentType: "audio/wav", referenceText: "", language: "" },
        new AbortController().signal,
      ) as Promise<unknown>,
    );
    expect(isEngineInputError(bad)).toBe(true);
    expect(bad.message).toContain("audio is not a WAV file");
    const foreign = await failureOf(
      collectPcm(
        engine,
        speechRequest("Hi", {
          clonePrompt: { digest: "e".repeat(64), bytes: new Uint8Array([1, 2, 3]) },
        }),
      ),
    );
    expect(isEngineInputError(foreign)).toBe(true);
    expect(foreign.message).toContain("not a clone prompt");
    expect(fake.requests.filter((r) => r.status === 200 && r.method === "POST")).toHaveLength(0);
  });

  it("maps the server's unknown speaker to UnknownVoiceError", async () => {
    const { fake, engine } = await setup(
      { voices: ["vivian", "serena"] },
      { knobs: { voices: undefined } },
    );
    fake.knobs.voices = ["vivian"];
    const err = await failureOf(collectPcm(engine, speechRequest("Hi", { voiceId: "serena" })));
    expect(isUnknownVoiceError(err)).toBe(true);
    expect(err.message).toContain("unknown speaker 'serena'");
  });
});
