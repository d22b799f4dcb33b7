import { describe, expect, it } from "vitest";
import { BreakerState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { settingDefaults } from "../../services/config/settings.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import { routingOptionsFromSettings } from "./backend-registry.js";
import { createCircuitBreaker } from "./circuit-breaker.js";

/** Routing options a started gateway has by default (its settings' defaults). */
const routing = routingOptionsFromSettings(settingDefaults(gatewaySettings));

function clock(start = 0) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** Runs one call through the breaker with the given result. */
function call(
  breaker: ReturnType<typeof createCircuitBreaker>,
  result: "success" | "failure" | "neutral",
) {
  expect(breaker.allows()).toBe(true);
  return breaker.settle(breaker.enter(), result, "boom");
}

describe("createCircuitBreaker", () => {
  it("opens after the consecutive-failure threshold; a success in between resets the count", () => {
    const t = clock();
    const breaker = createCircuitBreaker({
      ...routing.breaker,
      failureThreshold: 3,
      windowCalls: 100,
      now: t.now,
    });
    call(breaker, "failure");
    call(breaker, "failure");
    call(breaker, "success");
    call(breaker, "failure");
    call(breaker, "failure");
    expect(breaker.state).toBe(BreakerState.CLOSED);
    expect(call(breaker, "failure")).toEqual({
      state: BreakerState.OPEN,
      reason: "breaker opened: 3 calls in a row failed: boom; cooldown 10000 ms",
    });
    expect(breaker.allows()).toBe(false);
  });

  it("opens on the failure ratio once the window is full (a backend failing every other call)", () => {
    const t = clock();
    const breaker = createCircuitBreaker({
      ...routing.breaker,
      failureThreshold: 5,
      failureRatio: 0.5,
      windowCalls: 4,
      now: t.now,
    });
    call(breaker, "failure");
    call(breaker, "success");
    call(breaker, "failure");
    expect(breaker.state).toBe(BreakerState.CLOSED);
    expect(call(breaker, "success")?.state).toBe(BreakerState.OPEN);
  });

  it("ignores neutral outcomes (caller gone, backend busy)", () => {
    const breaker = createCircuitBreaker({
      ...routing.breaker,
      failureThreshold: 1,
      windowCalls: 1,
    });
    for (let i = 0; i < 10; i++) call(breaker, "neutral");
    expect(breaker.state).toBe(BreakerState.CLOSED);
  });

  it("goes half-open after the cooldown, one trial at a time, and closes after enough successes", () => {
    const t = clock(1000);
    const breaker = createCircuitBreaker({
      ...routing.breaker,
      failureThreshold: 1,
      cooldownMs: 500,
      halfOpenSuccesses: 2,
      now: t.now,
    });
    call(breaker, "failure");
    t.advance(499);
    expect(breaker.state).toBe(BreakerState.OPEN);
    expect(breaker.allows()).toBe(false);
    t.advance(1);
    expect(breaker.state).toBe(BreakerState.HALF_OPEN);
    const trial = breaker.enter();
    expect(trial.trial).toBe(true);
    expect(breaker.allows()).toBe(false); // the trial is running
    expect(breaker.settle(trial, "success")).toBeUndefined();
    expect(breaker.state).toBe(BreakerState.HALF_OPEN);
    expect(call(breaker, "success")).toEqual({
      state: BreakerState.CLOSED,
      reason: "breaker closed after 2 successful trial calls",
    });
    expect(breaker.allows()).toBe(true);
  });

  it("reopens when a trial fails, for another full cooldown", () => {
    const t = clock();
    const breaker = createCircuitBreaker({
      ...routing.breaker,
      failureThreshold: 1,
      cooldownMs: 100,
      now: t.now,
    });
    call(breaker, "failure");
    t.advance(100);
    expect(call(breaker, "failure")?.reason).toBe(
      "breaker opened: trial call failed: boom; cooldown 100 ms",
    );
    t.advance(99);
    expect(breaker.allows()).toBe(false);
    t.advance(1);
    expect(breaker.allows()).toBe(true);
  });

  it("lets a call that entered while closed settle without deciding a half-open breaker", () => {
    const t = clock();
    const breaker = createCircuitBreaker({
      ...routing.breaker,
      failureThreshold: 1,
      cooldownMs: 10,
      now: t.now,
    });
    const slow = breaker.enter();
    call(breaker, "failure");
    t.advance(10);
    expect(breaker.state).toBe(BreakerState.HALF_OPEN);
    expect(breaker.settle(slow, "failure")).toBeUndefined();
    expect(breaker.state).toBe(BreakerState.HALF_OPEN);
  });

  it("resets to closed", () => {
    const breaker = createCircuitBreaker({ ...routing.breaker, failureThreshold: 1 });
    call(breaker, "failure");
    breaker.reset();
    expect(breaker.state).toBe(BreakerState.CLOSED);
    expect(breaker.allows()).toBe(true);
  });
});
