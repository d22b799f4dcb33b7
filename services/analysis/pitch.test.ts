import { describe, expect, it } from "vitest";
import { VoiceGender } from "../../gen/voxgate/v1/capabilities_pb.js";
import { estimateGender } from "./gender.js";
import { pitchStats, trackPitch } from "./pitch.js";
import { estimateSpeakingRate } from "./speaking-rate.js";
import {
  harmonicTone,
  interleave,
  sine,
  syllableTrain,
  toInt16,
  whiteNoise,
} from "./test-signals.js";

const statsOf = (signal: Float64Array, rate: number, channels = 1) =>
  pitchStats(trackPitch(toInt16(signal), rate, channels));

describe("trackPitch", () => {
  it.each([
    { f0: 110, rate: 22_050 },
    { f0: 220, rate: 22_050 },
    { f0: 440, rate: 22_050 },
    { f0: 110, rate: 48_000 },
    { f0: 220, rate: 44_100 },
    { f0: 440, rate: 16_000 },
    // Near the 65 Hz floor YIN's window holds under two periods and misses some frames.
    { f0: 70, rate: 24_000, voiced: 0.7 },
  ])("finds a $f0 Hz sine at $rate Hz within 5 %", ({ f0, rate, voiced }) => {
    const stats = statsOf(sine(f0, rate, 2, 0.5), rate);
    expect(Math.abs((stats.medianF0Hz as number) / f0 - 1)).toBeLessThan(0.05);
    expect(stats.voicedRatio).toBeGreaterThan(voiced ?? 0.95);
    expect(stats.f0StddevHz).toBeLessThan(f0 * 0.01);
  });

  it.each([110, 150, 220, 330])("finds the f0 of a %d Hz harmonic tone, not a harmonic", (f0) => {
    const stats = statsOf(harmonicTone(f0, 22_050, 2, { harmonics: 10 }), 22_050);
    expect(Math.abs((stats.medianF0Hz as number) / f0 - 1)).toBeLessThan(0.05);
  });

  it("follows vibrato: median at the centre, spread as the modulation", () => {
    // 200 Hz +-5 % at 5 Hz: the standard deviation of a sine is its amplitude / sqrt(2) = 7.1 Hz.
    const stats = statsOf(harmonicTone(200, 22_050, 4, { vibrato: 0.05 }), 22_050);
    expect(Math.abs((stats.medianF0Hz as number) / 200 - 1)).toBeLessThan(0.02);
    expect(stats.f0StddevHz).toBeGreaterThan(5);
    expect(stats.f0StddevHz).toBeLessThan(9);
    expect(stats.f0RangeHz?.[0]).toBeLessThan(195);
    expect(stats.f0RangeHz?.[1]).toBeGreaterThan(205);
  });

  it("tracks a change of pitch by a fifth without folding it", () => {
    // Less than an octave: the octave guards must leave both registers alone.
    const low = harmonicTone(120, 22_050, 1);
    const high = harmonicTone(180, 22_050, 1);
    const both = new Float64Array(low.length + high.length);
    both.set(low);
    both.set(high, low.length);
    const stats = statsOf(both, 22_050);
    expect(stats.f0RangeHz?.[0]).toBeCloseTo(120, -1);
    expect(stats.f0RangeHz?.[1]).toBeCloseTo(180, -1);
    expect(stats.voicedRatio).toBeGreaterThan(0.95);
  });

  it("counts silence and noise as unvoiced", () => {
    const tone = sine(150, 22_050, 1, 0.5);
    const half = new Float64Array(tone.length * 2);
    half.set(tone);
    expect(statsOf(half, 22_050).voicedRatio).toBeCloseTo(0.5, 1);
    const noise = statsOf(whiteNoise(22_050, 2, 0.1), 22_050);
    expect(noise.voicedRatio).toBeLessThan(0.1);
    const silence = statsOf(new Float64Array(22_050), 22_050);
    expect(silence).toEqual({
      medianF0Hz: undefined,
      f0StddevHz: undefined,
      f0RangeHz: undefined,
      voicedRatio: 0,
    });
  });

  it("mixes stereo channels down before tracking", () => {
    const tone = sine(180, 22_050, 1, 0.5);
    const stats = statsOf(interleave(tone, new Float64Array(tone.length)), 22_050, 2);
    expect(Math.abs((stats.medianF0Hz as number) / 180 - 1)).toBeLessThan(0.05);
  });
});

describe("estimateSpeakingRate", () => {
  it.each([
    { count: 20, syllableMs: 150, gapMs: 100 },
    { count: 30, syllableMs: 100, gapMs: 60 },
  ])(
    "counts $count syllables of $syllableMs ms with $gapMs ms gaps",
    ({ count, syllableMs, gapMs }) => {
      const signal = syllableTrain(140, 22_050, count, syllableMs, gapMs);
      const rate = estimateSpeakingRate(trackPitch(toInt16(signal), 22_050, 1));
      expect(Math.abs(rate.syllables - count)).toBeLessThanOrEqual(1);
      // The quiet gaps are 30 dB down, within the audible range, so the rate is per total time.
      const expected = 1000 / (syllableMs + gapMs);
      expect(Math.abs(rate.syllablesPerSecond / expected - 1)).toBeLessThan(0.1);
      expect(rate.wordsPerMinute).toBeCloseTo((rate.syllablesPerSecond * 60) / 1.5, 6);
    },
  );

  it("finds no syllable in a steady tone or in silence", () => {
    expect(
      estimateSpeakingRate(trackPitch(toInt16(sine(150, 22_050, 2, 0.5)), 22_050, 1)),
    ).toMatchObject({
      syllables: 0,
      syllablesPerSecond: 0,
    });
    expect(estimateSpeakingRate(trackPitch(new Int16Array(22_050), 22_050, 1))).toMatchObject({
      syllables: 0,
      speakingSeconds: 0,
      wordsPerMinute: 0,
    });
  });
});

describe("estimateGender", () => {
  it("is confident far from the overlap and a coin toss inside it", () => {
    expect(estimateGender(110)).toEqual({ gender: VoiceGender.MALE, confidence: 0.95 });
    expect(estimateGender(250)).toEqual({ gender: VoiceGender.FEMALE, confidence: 0.95 });
    for (const f0 of [150, 160, 170, 180]) {
      const { confidence } = estimateGender(f0);
      expect(confidence).toBeGreaterThanOrEqual(0.5);
      expect(confidence).toBeLessThan(0.62);
    }
    expect(estimateGender(150).gender).toBe(VoiceGender.MALE);
    expect(estimateGender(180).gender).toBe(VoiceGender.FEMALE);
    expect(estimateGender(130).confidence).toBeGreaterThan(estimateGender(150).confidence);
  });
});
