import { describe, expect, it } from "vitest";
import {
  channelWeights,
  deriveKWeightingFilters,
  integratedLoudness,
  kWeightingFilters,
  samplePeakDbfs,
} from "./loudness.js";
import { interleave, pinkNoise, sine, toInt16, whiteNoise } from "./test-signals.js";

// An independent reference, written from BS.1770-4 itself: the two 48 kHz biquads of Tables 1 and
// 2 in direct form I, and the mean square over the whole signal (no gating: for stationary noise
// every block passes both gates, so gating changes nothing).
function referenceLoudness48k(channels: Float64Array[]): number {
  const stage = (x: Float64Array, b: number[], a: number[]): Float64Array => {
    const y = new Float64Array(x.length);
    for (let n = 0; n < x.length; n++) {
      y[n] =
        (b[0] as number) * (x[n] as number) +
        (b[1] as number) * (x[n - 1] ?? 0) +
        (b[2] as number) * (x[n - 2] ?? 0) -
        (a[1] as number) * (y[n - 1] ?? 0) -
        (a[2] as number) * (y[n - 2] ?? 0);
    }
    return y;
  };
  let sum = 0;
  for (const x of channels) {
    // The int16 rounding the analyzer sees is applied here too.
    const quantized = Float64Array.from(toInt16(x), (v) => v / 32768);
    const shelf = stage(
      quantized,
      [1.53512485958697, -2.69169618940638, 1.19839281085285],
      [1, -1.69065929318241, 0.73248077421585],
    );
    const weighted = stage(shelf, [1, -2, 1], [1, -1.99004745483398, 0.99007225036621]);
    sum += weighted.reduce((s, v) => s + v * v, 0) / weighted.length;
  }
  return -0.691 + 10 * Math.log10(sum);
}

const mono = (signal: Float64Array, rate: number) => integratedLoudness(toInt16(signal), rate, 1);

describe("integratedLoudness", () => {
  it("reads a full-scale 997 Hz sine as -3.01 LUFS, as BS.1770-4 specifies", () => {
    expect(mono(sine(997, 48_000, 5, 0.99999), 48_000)).toBeCloseTo(-3.01, 1);
  });

  it.each([
    { name: "white noise at -20 dBFS RMS", signal: whiteNoise(48_000, 10, 0.1) },
    { name: "pink noise at -23 dBFS RMS", signal: pinkNoise(48_000, 10, 10 ** (-23 / 20)) },
    { name: "pink noise at -40 dBFS RMS", signal: pinkNoise(48_000, 10, 0.01, 7) },
  ])("matches an independent direct-form reference on $name at 48 kHz", ({ signal }) => {
    const measured = mono(signal, 48_000) as number;
    const reference = referenceLoudness48k([signal]);
    expect(Math.abs(measured - reference)).toBeLessThan(0.5);
    // It is in fact far closer than the 0.5 LU asked for.
    expect(Math.abs(measured - reference)).toBeLessThan(0.05);
  });

  it("sums channels: the same signal on both stereo channels is 3.01 LU louder than mono", () => {
    const noise = pinkNoise(48_000, 6, 0.05);
    const stereo = integratedLoudness(toInt16(interleave(noise, noise)), 48_000, 2) as number;
    expect(stereo - (mono(noise, 48_000) as number)).toBeCloseTo(3.01, 1);
    const left = pinkNoise(48_000, 6, 0.05, 11);
    const right = whiteNoise(48_000, 6, 0.02, 12);
    const mixed = integratedLoudness(toInt16(interleave(left, right)), 48_000, 2) as number;
    expect(mixed).toBeCloseTo(referenceLoudness48k([left, right]), 1);
  });

  it("weights 5.1 surround channels by 1.41 and ignores the LFE", () => {
    expect(channelWeights(6)).toEqual([1, 1, 1, 0, 1.41, 1.41]);
    const noise = pinkNoise(48_000, 4, 0.05);
    const silent = new Float64Array(noise.length);
    const lfeOnly = interleave(silent, silent, silent, noise, silent, silent);
    expect(integratedLoudness(toInt16(lfeOnly), 48_000, 6)).toBeUndefined();
    const surround = interleave(silent, silent, silent, silent, noise, silent);
    const surroundLufs = integratedLoudness(toInt16(surround), 48_000, 6) as number;
    expect(surroundLufs - (mono(noise, 48_000) as number)).toBeCloseTo(10 * Math.log10(1.41), 1);
  });

  it("leaves silence padding out (absolute gate)", () => {
    const noise = pinkNoise(48_000, 10, 0.05);
    const padded = new Float64Array(noise.length + 48_000 * 6);
    padded.set(noise, 48_000 * 3);
    const difference = (mono(padded, 48_000) as number) - (mono(noise, 48_000) as number);
    // Only the six blocks that straddle an edge count, partly filled: -0.13 LU here.
    expect(Math.abs(difference)).toBeLessThan(0.2);
  });

  it("leaves quiet passages out (relative gate at -10 LU)", () => {
    const loud = whiteNoise(48_000, 5, 0.1, 3);
    const quiet = whiteNoise(48_000, 5, 0.005, 4);
    const both = new Float64Array(loud.length + quiet.length);
    both.set(loud);
    both.set(quiet, loud.length);
    const gated = mono(both, 48_000) as number;
    expect(Math.abs(gated - (mono(loud, 48_000) as number))).toBeLessThan(0.3);
    // Without the relative gate the quiet half would pull it down by about 3 LU.
    expect(gated - referenceLoudness48k([both])).toBeGreaterThan(2.5);
  });

  it("is undefined for silence and for audio shorter than one 400 ms block", () => {
    expect(integratedLoudness(new Int16Array(48_000), 48_000, 1)).toBeUndefined();
    expect(mono(sine(1000, 48_000, 0.39), 48_000)).toBeUndefined();
    expect(mono(sine(1000, 48_000, 0.4), 48_000)).toBeCloseTo(-3.01, 1);
  });
});

describe("kWeightingFilters", () => {
  it("derives the standard's 48 kHz coefficients from the analog prototypes", () => {
    const [shelf, highPass] = deriveKWeightingFilters(48_000);
    const [tableShelf, tableHighPass] = kWeightingFilters(48_000);
    for (const key of ["b0", "b1", "b2", "a1", "a2"] as const) {
      expect(shelf[key]).toBeCloseTo(tableShelf[key], 5);
      expect(highPass[key]).toBeCloseTo(tableHighPass[key], 5);
    }
  });

  // The same tone must measure the same at any rate: that holds only if the filters for other
  // rates are the same analog filter, not the 48 kHz coefficients reused.
  it.each([
    { rate: 44_100, frequencies: [40, 100, 997, 3000, 8000] },
    { rate: 32_000, frequencies: [40, 100, 997, 3000, 6000] },
    { rate: 22_050, frequencies: [40, 100, 997, 3000] },
    // The bilinear transform warps frequencies towards Nyquist: 2.5 kHz at 16 kHz reads 0.15 LU
    // off (libebur128 and pyloudnorm do the same), 1.8 kHz 0.10 LU; the tones stay below a tenth of the rate here.
    { rate: 16_000, frequencies: [40, 100, 997, 1500] },
  ])("gives the 48 kHz reading of tones at $rate Hz", ({ rate, frequencies }) => {
    for (const frequency of frequencies) {
      const at48k = mono(sine(frequency, 48_000, 2, 0.5), 48_000) as number;
      const atRate = mono(sine(frequency, rate, 2, 0.5), rate) as number;
      expect(Math.abs(atRate - at48k), `${frequency} Hz`).toBeLessThan(0.1);
    }
  });
});

describe("samplePeakDbfs", () => {
  it("reads full scale as 0 dBFS and half scale as -6.02 dBFS; undefined for silence", () => {
    expect(samplePeakDbfs(Int16Array.of(0, -32768, 5))).toBe(0);
    expect(samplePeakDbfs(Int16Array.of(16384, -100))).toBeCloseTo(-6.02, 2);
    expect(samplePeakDbfs(new Int16Array(10))).toBeUndefined();
  });
});
