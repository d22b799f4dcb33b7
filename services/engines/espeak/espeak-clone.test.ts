import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnalysisKind } from "../../../gen/voxgate/v1/analysis_pb.js";
import { analyzePcm, profileVoice } from "../../analysis/audio-analysis.js";
import { createMp3Encoder } from "../../audio/mp3-encoder.js";
import { encodeWavHeader } from "../../audio/wav.js";
import { type EngineInputError, isEngineInputError } from "../engine-errors.js";
import type { EngineClonePrompt, EngineSynthesisRequest, TtsEngine } from "../tts-engine.js";
import {
  ESPEAK_CLONE_FORMAT,
  type EspeakClonePrompt,
  espeakCloneParameters,
  parseEspeakClonePrompt,
} from "./espeak-clone.js";
import { createEspeakEngine } from "./espeak-engine.js";

const REFERENCE_TEXT =
  "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore. " +
  "How much wood would a woodchuck chuck if a woodchuck could chuck wood?";
const TEST_TEXT = "Peter Piper picked a peck of pickled peppers. A proper copper coffee pot.";

function request(text: string, overrides: Partial<EngineSynthesisRequest> = {}) {
  return { text, voiceId: "en-us", speed: 1, instructions: "", ...overrides };
}

async function speak(engine: TtsEngine, req: EngineSynthesisRequest): Promise<Int16Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of engine.synthesize(req, new AbortController().signal)) {
    chunks.push(chunk.pcm);
  }
  const bytes = Buffer.concat(chunks);
  return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
}

function wavFile(samples: Int16Array, sampleRateHz: number): Uint8Array {
  const pcm = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  return Buffer.concat([
    encodeWavHeader({ sampleRateHz, channels: 1, dataBytes: pcm.length }),
    pcm,
  ]);
}

function promptOf(bytes: Uint8Array): EngineClonePrompt {
  return { digest: createHash("sha256").update(bytes).digest("hex"), bytes };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

describe("espeak-ng voice cloning", () => {
  let engine: TtsEngine;
  let rateHz: number;
  let speech: Int16Array;
  let defaultOutput: Int16Array;
  let defaultF0: number;

  beforeAll(async () => {
    engine = await createEspeakEngine();
    rateHz = engine.info.format.sampleRateHz;
    speech = await speak(engine, request(REFERENCE_TEXT));
    defaultOutput = await speak(engine, request(TEST_TEXT));
    defaultF0 = medianF0(defaultOutput);
  }, 120_000);

  afterAll(async () => {
    await engine?.close();
  });

  const medianF0 = (samples: Int16Array): number => {
    const analysis = analyzePcm({ samples, sampleRateHz: rateHz, channels: 1 }, [
      AnalysisKind.PITCH,
    ]);
    if (analysis.medianF0Hz === undefined) {
      throw new Error("no pitch in the output");
    }
    return analysis.medianF0Hz;
  };

  it("reports cloning support", () => {
    expect(engine.info.supportsCloning).toBe(true);
    expect(engine.info.modelFamily).toBe("espeak-ng");
    expect(engine.createClonePrompt).toBeTypeOf("function");
  });

  // Real speech at another pitch and rate: the same samples labelled with a higher or lower rate
  // play faster and higher (x1.7) or slower and lower (x0.8), like a tape at another speed.
  it.each([
    { name: "high and fast", factor: 1.7 },
    { name: "low and slow", factor: 0.8 },
  ])(
    "follows the pitch and the rate of a $name reference",
    async ({ factor }) => {
      const referenceRateHz = Math.round(rateHz * factor);
      const reference = wavFile(speech, referenceRateHz);
      const referenceProfile = profileVoice({
        samples: speech,
        sampleRateHz: referenceRateHz,
        channels: 1,
      });
      const created = await engine.createClonePrompt?.(
        {
          referenceAudio: reference,
          contentType: "audio/wav",
          referenceText: "",
          language: "en-us",
        },
        new AbortController().signal,
      );
      expect(created?.contentType).toBe("application/json");
      const prompt = JSON.parse(Buffer.from(created?.prompt ?? []).toString()) as EspeakClonePrompt;
      expect(prompt).toMatchObject({ format: ESPEAK_CLONE_FORMAT, baseVoice: "en-us" });
      expect(prompt.f0MedianHz).toBeCloseTo(referenceProfile.pitch.medianF0Hz ?? 0, 1);

      const cloned = await speak(
        engine,
        request(TEST_TEXT, {
          voiceId: "",
          clonePrompt: promptOf(created?.prompt ?? new Uint8Array()),
        }),
      );
      const clonedF0 = medianF0(cloned);
      console.info(
        `clone x${factor}: reference f0 ${prompt.f0MedianHz} Hz, ${prompt.wordsPerMinute} wpm; ` +
          `output f0 ${clonedF0.toFixed(1)} Hz (default ${defaultF0.toFixed(1)} Hz), ` +
          `${cloned.length} samples (default ${defaultOutput.length})`,
      );
      expect(Math.abs(clonedF0 / prompt.f0MedianHz - 1)).toBeLessThan(0.1);
      if (factor > 1) {
        expect(clonedF0).toBeGreaterThan(defaultF0 * 1.4);
        expect(cloned.length).toBeLessThan(defaultOutput.length * 0.8);
      } else {
        expect(clonedF0).toBeLessThan(defaultF0 * 0.9);
        expect(cloned.length).toBeGreaterThan(defaultOutput.length * 1.1);
      }
    },
    120_000,
  );

  it("still scales the rate of a cloned voice with speed", async () => {
    const created = await engine.createClonePrompt?.(
      {
        referenceAudio: wavFile(speech, rateHz),
        contentType: "audio/wav",
        referenceText: "",
        language: "",
      },
      new AbortController().signal,
    );
    const clonePrompt = promptOf(created?.prompt ?? new Uint8Array());
    const normal = await speak(engine, request(TEST_TEXT, { clonePrompt }));
    const fast = await speak(engine, request(TEST_TEXT, { clonePrompt, speed: 2 }));
    expect(fast.length).toBeLessThan(normal.length * 0.7);
  }, 60_000);

  it("refuses a reference that is not WAV, naming what it reads", async () => {
    const encoder = createMp3Encoder({ sampleRateHz: 22050, channels: 1 });
    const mp3 = Buffer.concat([encoder.encode(new Uint8Array(44100)), encoder.flush()]);
    const err = await rejection(
      engine.createClonePrompt?.(
        { referenceAudio: mp3, contentType: "audio/mpeg", referenceText: "", language: "" },
        new AbortController().signal,
      ) ?? Promise.resolve(),
    );
    expect(isEngineInputError(err)).toBe(true);
    expect((err as EngineInputError).message).toContain(
      "the CPU engine reads WAV references; got audio/mpeg",
    );
  });

  it("refuses WAV-labelled bytes that are not WAV and a reference without voice", async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    const silence = wavFile(new Int16Array(rateHz * 2), rateHz);
    for (const referenceAudio of [png, silence]) {
      const err = await rejection(
        engine.createClonePrompt?.(
          { referenceAudio, contentType: "audio/wav", referenceText: "", language: "" },
          new AbortController().signal,
        ) ?? Promise.resolve(),
      );
      expect(isEngineInputError(err)).toBe(true);
    }
  });

  it.each([
    {
      name: "binary bytes of another model",
      bytes: new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 1, 0]),
    },
    { name: "another format", bytes: Buffer.from('{"format":"qwen3-tts.prompt/1"}') },
    {
      name: "out-of-range values",
      bytes: Buffer.from(
        JSON.stringify({
          format: ESPEAK_CLONE_FORMAT,
          f0MedianHz: -5,
          f0RangeHz: [90, 120],
          wordsPerMinute: 180,
          syllablesPerSecond: 4,
          baseVoice: "en-us",
          voicedRatio: 0.4,
          referenceDurationMs: 5000,
        }),
      ),
    },
    {
      name: "an unknown base voice",
      bytes: Buffer.from(
        JSON.stringify({
          format: ESPEAK_CLONE_FORMAT,
          f0MedianHz: 120,
          f0RangeHz: [90, 140],
          wordsPerMinute: 180,
          syllablesPerSecond: 4,
          baseVoice: "xx-nowhere",
          voicedRatio: 0.4,
          referenceDurationMs: 5000,
        }),
      ),
    },
  ])("refuses a clone prompt with $name before any audio", async ({ bytes }) => {
    const chunks: Uint8Array[] = [];
    const err = await rejection(
      (async () => {
        for await (const chunk of engine.synthesize(
          request("Hello.", { clonePrompt: promptOf(bytes) }),
          new AbortController().signal,
        )) {
          chunks.push(chunk.pcm);
        }
      })(),
    );
    expect(isEngineInputError(err)).toBe(true);
    expect(chunks).toEqual([]);
  });
});

describe("espeakCloneParameters", () => {
  const base: EspeakClonePrompt = {
    format: ESPEAK_CLONE_FORMAT,
    f0MedianHz: 102,
    f0RangeHz: [91, 114],
    wordsPerMinute: 200,
    syllablesPerSecond: 5.01,
    baseVoice: "en-us",
    voicedRatio: 0.4,
    referenceDurationMs: 8000,
  };

  it("gives espeak-ng's defaults for a voice measured like its default voice", () => {
    expect(espeakCloneParameters(base, "en-us", 1)).toEqual({
      voice: "en-us",
      pitch: 50,
      pitchRange: 50,
      wordsPerMinute: 175,
    });
  });

  it("uses the female variant from 165 Hz and clamps what espeak-ng cannot do", () => {
    const high = espeakCloneParameters(
      { ...base, f0MedianHz: 220, f0RangeHz: [190, 250] },
      "de",
      1,
    );
    expect(high.voice).toBe("de+f3");
    const extreme = espeakCloneParameters(
      { ...base, f0MedianHz: 900, f0RangeHz: [100, 900], syllablesPerSecond: 30 },
      "en-us",
      3,
    );
    expect(extreme).toMatchObject({ pitch: 99, pitchRange: 99, wordsPerMinute: 450 });
    const still = espeakCloneParameters({ ...base, syllablesPerSecond: 0 }, "en-us", 1);
    expect(still.wordsPerMinute).toBe(175);
  });

  it("round-trips a prompt through parseEspeakClonePrompt and refuses oversized bytes", () => {
    expect(parseEspeakClonePrompt(Buffer.from(JSON.stringify(base)))).toEqual(base);
    expect(parseEspeakClonePrompt(new Uint8Array(5000))).toMatch(/at most 4096/);
    expect(parseEspeakClonePrompt(Buffer.from(JSON.stringify({ ...base, extra: 1 })))).toMatch(
      /invalid/,
    );
  });
});
