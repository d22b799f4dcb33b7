import { describe, expect, it } from "vitest";
import {
  type BackoffOptions,
  backoffDelayMs,
  defaultBackoff,
  kReplacementRedialJitterMs,
  kReplacementRedialMs,
  replacementRedialDelayMs,
} from "./backoff.js";

/** A `random` that returns the given values in turn and counts its calls. */
function scripted(...values: number[]) {
  let calls = 0;
  const random = () => values[calls++ % values.length] ?? 0;
  return { random, calls: () => calls };
}

const almostOne = 1 - Number.EPSILON;

describe("backoffDelayMs", () => {
  it("has documented defaults", () => {
    expect(defaultBackoff).toEqual({ initialDelayMs: 250, maxDelayMs: 10_000, multiplier: 2 });
  });

  it("grows the ceiling as initial * multiplier^attempt until the cap", () => {
    const ceilings = Array.from({ length: 8 }, (_, attempt) =>
      backoffDelayMs(attempt, defaultBackoff, () => almostOne),
    );
    expect(ceilings).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it("applies full jitter: the delay is random() times the ceiling, one draw per call", () => {
    const source = scripted(0.5, 0.25, 0);
    expect(backoffDelayMs(2, defaultBackoff, source.random)).toBe(500);
    expect(backoffDelayMs(2, defaultBackoff, source.random)).toBe(250);
    expect(backoffDelayMs(2, defaultBackoff, source.random)).toBe(0);
    expect(source.calls()).toBe(3);
  });

  it("starts at [0, initialDelayMs] for attempt 0 and treats negative attempts as 0", () => {
    expect(backoffDelayMs(0, defaultBackoff, () => 0)).toBe(0);
    expect(backoffDelayMs(0, defaultBackoff, () => almostOne)).toBe(250);
    expect(backoffDelayMs(-3, defaultBackoff, () => almostOne)).toBe(250);
  });

  it("never exceeds the cap, even for huge attempts", () => {
    expect(backoffDelayMs(1000, defaultBackoff, () => almostOne)).toBe(10_000);
    expect(backoffDelayMs(Number.MAX_SAFE_INTEGER, defaultBackoff, () => almostOne)).toBe(10_000);
  });

  it("honours custom options", () => {
    const options: BackoffOptions = { initialDelayMs: 100, maxDelayMs: 1000, multiplier: 3 };
    const ceilings = [0, 1, 2, 3].map((n) => backoffDelayMs(n, options, () => almostOne));
    expect(ceilings).toEqual([100, 300, 900, 1000]);
  });

  it("stays within [0, min(max, initial * mult^n)] with the real random source", () => {
    const seen = new Set<number>();
    for (let attempt = 0; attempt < 10; attempt++) {
      const ceiling = Math.min(10_000, 250 * 2 ** attempt);
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelayMs(attempt);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(ceiling);
        seen.add(delay);
      }
    }
    // Jitter spreads the delays; lockstep values would collapse to a handful.
    expect(seen.size).toBeGreaterThan(100);
  });
});

describe("replacementRedialDelayMs", () => {
  it("is the short pace plus a small jitter, whatever the attempt", () => {
    expect(replacementRedialDelayMs(() => 0)).toBe(kReplacementRedialMs);
    expect(replacementRedialDelayMs(() => almostOne)).toBe(
      kReplacementRedialMs + kReplacementRedialJitterMs,
    );
    expect(replacementRedialDelayMs(() => 0.5)).toBe(
      kReplacementRedialMs + kReplacementRedialJitterMs / 2,
    );
    // Far below the first backoff ceilings a fleet would otherwise climb while the
    // replacement starts (250, 500, 1000, ... ms).
    expect(kReplacementRedialMs + kReplacementRedialJitterMs).toBeLessThanOrEqual(
      defaultBackoff.initialDelayMs,
    );
  });
});
