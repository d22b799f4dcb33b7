import { describe, expect, it } from "vitest";
import { harmonicTone, sine, toInt16 } from "./test-signals.js";
import { measureVoiceFeatures, pitchBucket } from "./voice-features.js";

const RATE = 16_000;

describe("voice features with Cloud's thresholds", () => {
  it("buckets pitch at 140 and 210 Hz as Cloud does", () => {
    expect(pitchBucket(139.9)).toBe("low");
    expect(pitchBucket(140)).toBe("medium");
    expect(pitchBucket(210)).toBe("medium");
    expect(pitchBucket(210.1)).toBe("high");
  });

  it("measures f0 percentiles, RMS and the centroid of known tones", () => {
    const low = measureVoiceFeatures({
      samples: toInt16(harmonicTone(110, RATE, 2, { amplitude: 0.5 })),
      sampleRateHz: RATE,
      channels: 1,
    });
    expect(low.f0_hz_median).toBeCloseTo(110, -0.5);
    expect(low.f0_hz_p10 as number).toBeLessThanOrEqual(low.f0_hz_median as number);
    expect(low.f0_hz_p90 as number).toBeGreaterThanOrEqual(low.f0_hz_median as number);
    expect(low.pitch_bucket).toBe("low");
    // Harmonics at 1/k amplitude put the centroid a few hundred Hz up: dark.
    expect(low.brightness).toBe("dark");

    // A 3 kHz sine of amplitude 0.5: RMS 0.5/√2, centroid at 3 kHz (bright).
    const bright = measureVoiceFeatures({
      samples: toInt16(sine(3000, RATE, 1, 0.5)),
      sampleRateHz: RATE,
      channels: 1,
    });
    expect(bright.rms).toBeCloseTo(0.5 / Math.SQRT2, 2);
    expect(bright.centroid_hz_median as number).toBeGreaterThan(2900);
    expect(bright.centroid_hz_median as number).toBeLessThan(3100);
    expect(bright.brightness).toBe("bright");
  });

  it("leaves f0 keys out of silence", () => {
    const features = measureVoiceFeatures({
      samples: new Int16Array(RATE),
      sampleRateHz: RATE,
      channels: 1,
    });
    expect(features.f0_hz_median).toBeUndefined();
    expect(features.pitch_bucket).toBeUndefined();
    expect(features.centroid_hz_median).toBeUndefined();
  });
});
