import { describe, expect, it } from "vitest";
import { harmonicTone, sine, whiteNoise } from "./test-signals.js";
import { createYinDetector } from "./yin.js";

describe("createYinDetector", () => {
  const rateHz = 8000;
  const frameOf = (signal: Float64Array) => signal.subarray(1000, 1000 + 512);

  it.each([80, 123.4, 200, 333, 500])("finds a %d Hz sine within 0.5 % between samples", (f0) => {
    const detect = createYinDetector({ sampleRateHz: rateHz });
    const found = detect(frameOf(sine(f0, rateHz, 1, 0.5)));
    expect(found).not.toBeNull();
    expect(Math.abs((found as number) / f0 - 1)).toBeLessThan(0.005);
  });

  it("takes the fundamental of a tone rich in harmonics, not a harmonic", () => {
    const detect = createYinDetector({ sampleRateHz: rateHz });
    const found = detect(frameOf(harmonicTone(150, rateHz, 1, { harmonics: 10 })));
    expect(Math.abs((found as number) / 150 - 1)).toBeLessThan(0.01);
  });

  it("finds no period in white noise or digital silence", () => {
    const detect = createYinDetector({ sampleRateHz: rateHz });
    expect(detect(frameOf(whiteNoise(rateHz, 1, 0.3)))).toBeNull();
    expect(detect(new Float64Array(512))).toBeNull();
  });

  it("finds nothing below two periods of the frame: 512 samples at 8 kHz reach down to ~31 Hz", () => {
    const detect = createYinDetector({ sampleRateHz: rateHz });
    expect(detect(frameOf(sine(25, rateHz, 1, 0.5)))).toBeNull();
    expect(detect(new Float64Array(4))).toBeNull();
  });
});
