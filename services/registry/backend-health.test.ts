import { describe, expect, it } from "vitest";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { createHealthMachine, visibleState } from "./backend-health.js";

describe("createHealthMachine", () => {
  it("walks pending → ready ↔ unhealthy as the signals say", () => {
    const machine = createHealthMachine({ probeFailureThreshold: 2 });
    expect(machine.health).toBe("pending");
    expect(machine.apply({ kind: "probe-failed", error: "x" })).toBeUndefined();
    expect(machine.apply({ kind: "heartbeat" })).toBe("ready");
    expect(machine.apply({ kind: "probe-failed", error: "x" })).toBeUndefined();
    expect(machine.apply({ kind: "probe-ok" })).toBeUndefined();
    // The success reset the count: two more failures are needed.
    expect(machine.apply({ kind: "probe-failed", error: "x" })).toBeUndefined();
    expect(machine.apply({ kind: "probe-failed", error: "x" })).toBe("unhealthy");
    expect(machine.apply({ kind: "heartbeat" })).toBeUndefined();
    expect(machine.apply({ kind: "probe-ok" })).toBe("ready");
    expect(machine.apply({ kind: "lost", error: "stream ended" })).toBe("unhealthy");
  });

  it("shows DRAINING over any health", () => {
    expect(visibleState("pending", false)).toBe(BackendState.PENDING);
    expect(visibleState("ready", false)).toBe(BackendState.READY);
    expect(visibleState("unhealthy", false)).toBe(BackendState.UNHEALTHY);
    expect(visibleState("unhealthy", true)).toBe(BackendState.DRAINING);
  });
});
