import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnalysisKind, AudioAnalysisSchema } from "../../gen/voxgate/v1/analysis_pb.js";
import { VoiceGender } from "../../gen/voxgate/v1/capabilities_pb.js";
import { createEspeakEngine } from "../engines/espeak/espeak-engine.js";
import type { TtsEngine } from "../engines/tts-engine.js";
import { analyzeAudio, analyzeVoiceProfile } from "./analyze-audio.js";
import { ANALYZER_NAME, analyzePcm, profileVoice } from "./audio-analysis.js";
import { harmonicTone, interleave, sine, toInt16 } from "./test-signals.js";

const tonePcm = (f0: number, seconds: number, sampleRateHz = 22_050) => ({
  samples: toInt16(harmonicTone(f0, sampleRateHz, seconds, { amplitude: 0.5 })),
  sampleRateHz,
  channels: 1,
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

describe("analyzePcm", () => {
  it("measures everything it can for an empty list of kinds, and never age", () => {
    const analysis = analyzePcm(tonePcm(220, 2), []);
    expect(analysis).toMatchObject({
      durationMs: 2000n,
      sampleRateHz: 22_050,
      channels: 1,
      gender: VoiceGender.FEMALE,
      analyzer: ANALYZER_NAME,
    });
    expect(Math.abs((analysis.medianF0Hz as number) / 220 - 1)).toBeLessThan(0.05);
    expect(analysis.peakDbfs).toBeCloseTo(-6.02, 1);
    expect(analysis.loudnessLufs).toBeLessThan(0);
    expect(analysis.voicedRatio).toBeGreaterThan(0.95);
    expect(analysis.genderConfidence).toBeGreaterThan(0.8);
    expect(analysis.ageYears).toBeUndefined();
    expect(analysis.ageConfidence).toBeUndefined();
    // The result is a valid AudioAnalysis message.
    expect(create(AudioAnalysisSchema, analysis).medianF0Hz).toBe(analysis.medianF0Hz);
  });

  it("measures only the kinds asked for", () => {
    const pcm = tonePcm(110, 1);
    const basic = analyzePcm(pcm, [AnalysisKind.BASIC]);
    expect(basic.loudnessLufs).toBeDefined();
    expect(basic.medianF0Hz).toBeUndefined();
    expect(basic.gender).toBe(VoiceGender.UNSPECIFIED);
    const gender = analyzePcm(pcm, [AnalysisKind.GENDER]);
    expect(gender.gender).toBe(VoiceGender.MALE);
    expect(gender.medianF0Hz).toBeUndefined();
    expect(gender.loudnessLufs).toBeUndefined();
    const age = analyzePcm(pcm, [AnalysisKind.AGE]);
    expect(Object.keys(age).sort()).toEqual(
      ["analyzer", "channels", "durationMs", "gender", "sampleRateHz"].sort(),
    );
  });

  it("analyzes stereo: 3 LU louder than one channel, same pitch", () => {
    const tone = sine(200, 48_000, 2, 0.5);
    const stereo = analyzePcm(
      { samples: toInt16(interleave(tone, tone)), sampleRateHz: 48_000, channels: 2 },
      [],
    );
    const mono = analyzePcm({ samples: toInt16(tone), sampleRateHz: 48_000, channels: 1 }, []);
    expect(stereo.durationMs).toBe(2000n);
    expect(stereo.channels).toBe(2);
    expect((stereo.loudnessLufs as number) - (mono.loudnessLufs as number)).toBeCloseTo(3.01, 1);
    expect(stereo.medianF0Hz).toBeCloseTo(mono.medianF0Hz as number, 3);
  });

  it("leaves loudness, peak and pitch unset for digital silence", () => {
    const analysis = analyzePcm(
      { samples: new Int16Array(44_100), sampleRateHz: 22_050, channels: 1 },
      [],
    );
    expect(analysis).toEqual({
      durationMs: 2000n,
      sampleRateHz: 22_050,
      channels: 1,
      voicedRatio: 0,
      gender: VoiceGender.UNSPECIFIED,
      analyzer: ANALYZER_NAME,
    });
  });

  it.each([
    { samples: new Int16Array(3), sampleRateHz: 22_050, channels: 2 },
    { samples: new Int16Array(4), sampleRateHz: 0, channels: 1 },
    { samples: new Int16Array(4), sampleRateHz: 22_050, channels: 0 },
    { samples: new Float32Array(4) as unknown as Int16Array, sampleRateHz: 22_050, channels: 1 },
  ])("throws RangeError for malformed PCM (%#)", (pcm) => {
    expect(() => analyzePcm(pcm, [])).toThrow(RangeError);
  });
});

describe("analyzeAudio", () => {
  it("gives the same result in a worker thread as inline", async () => {
    const pcm = tonePcm(180, 4);
    const inWorker = await analyzeAudio(pcm, [], { inlineMaxMs: 0 });
    expect(inWorker).toEqual(analyzePcm(pcm, []));
    const profile = await analyzeVoiceProfile(pcm, { inlineMaxMs: 0 });
    expect(profile).toEqual(profileVoice(pcm));
    // The caller's samples were copied, not transferred away.
    expect(pcm.samples.length).toBe(4 * 22_050);
  }, 60_000);

  it("terminates the worker and rejects with the reason when aborted", async () => {
    const controller = new AbortController();
    const running = analyzeAudio(tonePcm(150, 30), [], {
      inlineMaxMs: 0,
      signal: controller.signal,
    });
    controller.abort(new Error("caller went away"));
    expect(await rejection(running)).toEqual(new Error("caller went away"));
    const before = new AbortController();
    before.abort("early");
    expect(await rejection(analyzeAudio(tonePcm(150, 1), [], { signal: before.signal }))).toBe(
      "early",
    );
  }, 60_000);

  it("rejects malformed PCM before starting a worker", async () => {
    const err = await rejection(
      analyzeAudio({ samples: new Int16Array(3), sampleRateHz: 8000, channels: 2 }, [], {
        inlineMaxMs: 0,
      }),
    );
    expect(err).toBeInstanceOf(RangeError);
  });
});

describe("analysis of real CPU-engine speech", () => {
  let engine: TtsEngine;
  let speech: Int16Array;

  beforeAll(async () => {
    engine = await createEspeakEngine();
    const chunks: Uint8Array[] = [];
    const text =
      "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore.";
    for await (const chunk of engine.synthesize(
      { text, voiceId: "en-us", speed: 1, instructions: "" },
      new AbortController().signal,
    )) {
      chunks.push(chunk.pcm);
    }
    const bytes = Buffer.concat(chunks);
    speech = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  }, 120_000);

  afterAll(async () => {
    await engine?.close();
  });

  it("finds the pitch of espeak-ng's default male voice", async () => {
    const analysis = await analyzeAudio(
      { samples: speech, sampleRateHz: engine.info.format.sampleRateHz, channels: 1 },
      [],
    );
    console.info(
      `espeak-ng en-us: f0 ${analysis.medianF0Hz?.toFixed(1)} Hz (sd ${analysis.f0StddevHz?.toFixed(1)}), ` +
        `voiced ${analysis.voicedRatio?.toFixed(2)}, ${analysis.loudnessLufs?.toFixed(1)} LUFS, ` +
        `peak ${analysis.peakDbfs?.toFixed(1)} dBFS`,
    );
    // espeak-ng's en-us voice speaks at pitch 50 around 100 Hz (measured 102-104 Hz); a male
    // voice sits in 85-155 Hz, and anything outside 90-125 Hz would mean octave errors.
    expect(analysis.medianF0Hz).toBeGreaterThan(90);
    expect(analysis.medianF0Hz).toBeLessThan(125);
    expect(analysis.gender).toBe(VoiceGender.MALE);
    expect(analysis.genderConfidence).toBeGreaterThan(0.8);
    // Speech has pauses and unvoiced consonants, so well under all of the frames are voiced.
    expect(analysis.voicedRatio).toBeGreaterThan(0.2);
    expect(analysis.voicedRatio).toBeLessThan(0.9);
    expect(analysis.loudnessLufs).toBeGreaterThan(-40);
    expect(analysis.loudnessLufs).toBeLessThan(-5);
  }, 60_000);
});
