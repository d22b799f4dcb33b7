import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { BackendKind, BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { CapabilitiesSchema, Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import { LoadReportSchema } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import type { BackendRegistration, GpuBackendClient } from "./backend.js";
import {
  type BackendEvent,
  type BackendRegistry,
  createBackendRegistry,
} from "./backend-registry.js";

const log = pino({ level: "silent" });

/** A client the registry only holds on to; any call would be a test bug. */
const dummyClient = { name: "dummy" } as unknown as GpuBackendClient;

type EngineInit = NonNullable<MessageInitShape<typeof CapabilitiesSchema>["engines"]>[number];

const espeak: EngineInit = {
  id: "espeak-ng",
  model: { family: "espeak-ng", size: "" },
  features: [Feature.SYNTHESIZE],
};
const qwen: EngineInit = {
  id: "qwen-tts",
  model: { family: "qwen3-tts", size: "1.7b" },
  features: [Feature.SYNTHESIZE, Feature.CLONE_PROMPT_CREATE],
};

function registration(
  id: string,
  options: { slots?: number; priority?: number; engines?: EngineInit[] } = {},
): BackendRegistration {
  return {
    id,
    kind: BackendKind.AGENT,
    client: dummyClient,
    capabilities: create(CapabilitiesSchema, {
      slots: options.slots ?? 2,
      engines: options.engines ?? [espeak],
    }),
    priority: options.priority ?? 0,
    version: "test",
    address: `127.0.0.1:${id}`,
    labels: {},
  };
}

function leaseError(registry: BackendRegistry, ...args: Parameters<BackendRegistry["lease"]>) {
  try {
    registry.lease(...args);
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("lease should have failed");
}

const synth = { feature: Feature.SYNTHESIZE } as const;

describe("createBackendRegistry", () => {
  it("adds backends READY with zeroed counters and lists them by id", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("b"), "test");
    registry.add(registration("a"), "test");
    expect(registry.list().map((b) => b.id)).toEqual(["a", "b"]);
    const a = registry.get("a");
    expect(a?.state).toBe(BackendState.READY);
    expect(a?.inFlight).toBe(0);
    expect(a?.callsTotal).toBe(0);
    expect(a?.failuresTotal).toBe(0);
    expect(a?.client).toBe(dummyClient);
    expect(registry.get("missing")).toBeUndefined();
  });

  it("records load reports and ignores them for unknown ids", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("a"), "test");
    const before = registry.get("a")?.lastSeenAt.getTime() ?? 0;
    const load = create(LoadReportSchema, { inFlight: 1, slots: 2, cpuRatio: 0.5 });
    registry.reportLoad("a", load);
    registry.reportLoad("ghost", load);
    expect(registry.get("a")?.load).toBe(load);
    expect(registry.get("a")?.lastSeenAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(registry.list()).toHaveLength(1);
  });
});

describe("BackendRegistry.lease", () => {
  it("picks a capable, READY backend with a free slot and counts the call", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("draining"), "test");
    registry.setState("draining", BackendState.DRAINING, "test");
    registry.add(registration("unhealthy"), "test");
    registry.setState("unhealthy", BackendState.UNHEALTHY, "test");
    registry.add(registration("full", { slots: 1 }), "test");
    registry.lease({ ...synth, exclude: new Set(["ok"]) }); // fills "full"
    registry.add(
      registration("analyze-only", { engines: [{ id: "x", features: [Feature.ANALYZE] }] }),
      "test",
    );
    registry.add(registration("ok"), "test");

    const lease = registry.lease(synth);
    expect(lease.backend.id).toBe("ok");
    expect(registry.get("ok")?.inFlight).toBe(1);
    expect(registry.get("ok")?.callsTotal).toBe(1);
    expect(registry.get("draining")?.inFlight).toBe(0);
    expect(registry.get("unhealthy")?.inFlight).toBe(0);
    expect(registry.get("analyze-only")?.inFlight).toBe(0);
  });

  it("prefers the lower priority, even when it is more loaded", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("cheap", { priority: 10, slots: 4 }), "test");
    registry.add(registration("home-gpu", { priority: -5, slots: 4 }), "test");
    const picks = [1, 2, 3, 4].map(() => registry.lease(synth).backend.id);
    expect(picks).toEqual(["home-gpu", "home-gpu", "home-gpu", "home-gpu"]);
    // Only when the preferred one is full does the next priority get work.
    expect(registry.lease(synth).backend.id).toBe("cheap");
  });

  it("picks the least loaded (in-flight / slots) among equal priorities", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("small", { slots: 1 }), "test");
    registry.add(registration("big", { slots: 4 }), "test");
    // 0/1 vs 0/4: a tie, either may go first; afterwards the ratios decide.
    const first = registry.lease(synth).backend.id;
    const rest = [1, 2, 3, 4].map(() => registry.lease(synth).backend.id);
    const all = [first, ...rest];
    expect(all.filter((id) => id === "small")).toHaveLength(1);
    expect(all.filter((id) => id === "big")).toHaveLength(4);
    expect(registry.get("big")?.inFlight).toBe(4);
    expect(registry.get("small")?.inFlight).toBe(1);

    const registry2 = createBackendRegistry({ log });
    registry2.add(registration("a", { slots: 4 }), "test");
    registry2.add(registration("b", { slots: 2 }), "test");
    registry2.lease({ ...synth, exclude: new Set(["a"]) }); // b: 1/2
    registry2.lease({ ...synth, exclude: new Set(["b"]) }); // a: 1/4
    expect(registry2.lease(synth).backend.id).toBe("a"); // 1/4 < 1/2
    expect(registry2.lease(synth).backend.id).toBe("a"); // 2/4 = 1/2: a tie, a sorts first
  });

  it("treats zero slots as one", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("zero", { slots: 0 }), "test");
    expect(registry.lease(synth).backend.id).toBe("zero");
    expect(leaseError(registry, synth).code).toBe(Code.Unavailable);
  });

  it("honours the exclude set", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("a", { priority: 0 }), "test");
    registry.add(registration("b", { priority: 1 }), "test");
    expect(registry.lease({ ...synth, exclude: new Set(["a"]) }).backend.id).toBe("b");
    const error = leaseError(registry, { ...synth, exclude: new Set(["a", "b"]) });
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe("no other backend is connected (tried a, b)");
  });

  it("filters by engine id and model family", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("cpu", { engines: [espeak], slots: 8 }), "test");
    registry.add(registration("gpu", { engines: [qwen], priority: 5, slots: 8 }), "test");
    expect(registry.lease({ ...synth, engine: "qwen-tts" }).backend.id).toBe("gpu");
    expect(registry.lease({ ...synth, modelFamily: "qwen3-tts" }).backend.id).toBe("gpu");
    expect(registry.lease({ ...synth, modelFamily: "espeak-ng" }).backend.id).toBe("cpu");
    expect(registry.lease({ feature: Feature.CLONE_PROMPT_CREATE }).backend.id).toBe("gpu");
    // The engine and the model must match on the same engine.
    const error = leaseError(registry, { ...synth, engine: "espeak-ng", modelFamily: "qwen3-tts" });
    expect(error.rawMessage).toBe(
      'no connected backend offers synthesize, engine "espeak-ng", model "qwen3-tts"',
    );
  });

  describe("UNAVAILABLE messages", () => {
    it("says nothing is connected and how to fix it", () => {
      const registry = createBackendRegistry({ log });
      const error = leaseError(registry, synth);
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toContain("no backend is connected");
      expect(error.rawMessage).toContain("voxgate agent --gateway HOST:PORT");
    });

    it("names the missing feature or engine", () => {
      const registry = createBackendRegistry({ log });
      registry.add(registration("a"), "test");
      expect(leaseError(registry, { feature: Feature.ANALYZE }).rawMessage).toBe(
        "no connected backend offers analyze",
      );
      expect(leaseError(registry, { ...synth, engine: "piper" }).rawMessage).toBe(
        'no connected backend offers synthesize, engine "piper"',
      );
    });

    it("says when every capable backend is draining or unhealthy", () => {
      const registry = createBackendRegistry({ log });
      registry.add(registration("a"), "test");
      registry.add(registration("b"), "test");
      registry.setState("a", BackendState.DRAINING, "test");
      registry.setState("b", BackendState.UNHEALTHY, "test");
      const error = leaseError(registry, synth);
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toBe(
        "no backend offering synthesize is ready (all draining or unhealthy)",
      );
    });

    it("says when every capable backend is busy", () => {
      const registry = createBackendRegistry({ log });
      registry.add(registration("a", { slots: 1 }), "test");
      registry.lease(synth);
      const error = leaseError(registry, synth);
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toBe(
        "every backend offering synthesize is busy (all slots in use); retry shortly",
      );
      expect(registry.get("a")?.inFlight).toBe(1);
      expect(registry.get("a")?.callsTotal).toBe(1);
    });
  });
});

describe("BackendLease.release", () => {
  it("frees the slot once, however often it is called", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("a", { slots: 1 }), "test");
    const lease = registry.lease(synth);
    expect(registry.get("a")?.inFlight).toBe(1);
    lease.release("ok");
    lease.release("ok");
    lease.release("backend-failure", "late");
    expect(registry.get("a")?.inFlight).toBe(0);
    expect(registry.get("a")?.failuresTotal).toBe(0);
    expect(registry.get("a")?.lastError).toBe("");
    // The freed slot is usable again.
    expect(registry.lease(synth).backend.id).toBe("a");
    expect(registry.get("a")?.callsTotal).toBe(2);
  });

  it("counts failures on backend-failure only, keeping the error", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("a", { slots: 4 }), "test");
    registry.lease(synth).release("caller-gone", "client went away");
    registry.lease(synth).release("ok");
    registry.lease(synth).release("backend-failure", "engine crashed");
    registry.lease(synth).release("backend-failure");
    const a = registry.get("a");
    expect(a?.callsTotal).toBe(4);
    expect(a?.failuresTotal).toBe(2);
    expect(a?.lastError).toBe("call failed");
    expect(a?.inFlight).toBe(0);
  });

  it("marks the backend seen on a successful call", async () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("a"), "test");
    const before = registry.get("a")?.lastSeenAt.getTime() ?? 0;
    const lease = registry.lease(synth);
    await new Promise((resolve) => setTimeout(resolve, 5));
    lease.release("ok");
    expect(registry.get("a")?.lastSeenAt.getTime()).toBeGreaterThan(before);
  });

  it("stays valid after the backend was removed", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("a"), "test");
    const lease = registry.lease(synth);
    registry.remove("a", "agent gone");
    expect(() => lease.release("backend-failure", "agent gone")).not.toThrow();
    expect(lease.backend.failuresTotal).toBe(1);
    expect(lease.backend.inFlight).toBe(0);
    expect(registry.get("a")).toBeUndefined();
  });
});

describe("BackendRegistry.watch", () => {
  it("reports add, state change and remove with snapshots, until unsubscribed", () => {
    const registry = createBackendRegistry({ log });
    const events: BackendEvent[] = [];
    const unsubscribe = registry.watch((event) => events.push(event));
    registry.add(registration("a"), "agent connected");
    registry.setState("a", BackendState.DRAINING, "agent draining: deploy");
    registry.setState("a", BackendState.DRAINING, "again"); // no change, no event
    registry.setState("ghost", BackendState.DRAINING, "unknown"); // ignored
    registry.remove("a", "agent left");
    registry.remove("a", "twice"); // already gone, no event
    expect(events.map((e) => [e.backend.id, e.backend.state, e.reason])).toEqual([
      ["a", BackendState.READY, "agent connected"],
      ["a", BackendState.DRAINING, "agent draining: deploy"],
      ["a", BackendState.REMOVED, "agent left"],
    ]);
    expect(events.every((e) => e.time instanceof Date)).toBe(true);
    // Snapshots do not change with the live backend.
    expect(events[0]?.backend.state).toBe(BackendState.READY);

    unsubscribe();
    registry.add(registration("b"), "after unsubscribe");
    expect(events).toHaveLength(3);
  });

  it("serves several watchers independently", () => {
    const registry = createBackendRegistry({ log });
    const first: string[] = [];
    const second: string[] = [];
    const stopFirst = registry.watch((e) => first.push(e.reason));
    registry.watch((e) => second.push(e.reason));
    registry.add(registration("a"), "one");
    stopFirst();
    registry.add(registration("b"), "two");
    expect(first).toEqual(["one"]);
    expect(second).toEqual(["one", "two"]);
  });
});

describe("re-adding an id (agent reconnect)", () => {
  it("keeps the counters and comes back READY with the new registration", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("a", { slots: 4 }), "first session");
    registry.lease(synth).release("backend-failure", "boom");
    registry.lease(synth).release("ok");
    registry.lease(synth); // still running
    registry.setState("a", BackendState.DRAINING, "draining");

    const fresh = { ...registration("a", { slots: 8, priority: 3 }), version: "2" };
    registry.add(fresh, "agent reconnected");
    const a = registry.get("a");
    expect(a?.state).toBe(BackendState.READY);
    expect(a?.callsTotal).toBe(3);
    expect(a?.failuresTotal).toBe(1);
    expect(a?.inFlight).toBe(1);
    expect(a?.version).toBe("2");
    expect(a?.priority).toBe(3);
    expect(a?.capabilities.slots).toBe(8);
    expect(a?.lastError).toBe("");
    expect(registry.list()).toHaveLength(1);
  });

  it("frees the slot of a call that was running across the reconnect", () => {
    const registry = createBackendRegistry({ log });
    registry.add(registration("a", { slots: 1 }), "first session");
    const running = registry.lease(synth);
    registry.add(registration("a", { slots: 1 }), "agent reconnected");
    expect(registry.get("a")?.inFlight).toBe(1);
    running.release("backend-failure", "old session lost");
    expect(registry.get("a")?.inFlight).toBe(0);
    expect(registry.get("a")?.failuresTotal).toBe(1);
    expect(registry.lease(synth).backend.id).toBe("a");
  });
});
