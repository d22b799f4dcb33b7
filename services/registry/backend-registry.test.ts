import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { BackendKind, BackendState, BreakerState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { CapabilitiesSchema, Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import {
  HealthResponseSchema,
  LoadReportSchema,
  ServingState,
} from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { settingDefaults } from "../../services/config/settings.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import type { BackendCriteria, BackendRegistration, GpuBackendClient } from "./backend.js";
import {
  type BackendEvent,
  type BackendRegistry,
  type BackendRegistryOptions,
  createBackendRegistry,
  routingOptionsFromSettings,
} from "./backend-registry.js";

/** Routing options a started gateway has by default (its settings' defaults). */
const routing = routingOptionsFromSettings(settingDefaults(gatewaySettings));

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
  features: [Feature.SYNTHESIZE, Feature.CLONE_PROMPT_CREATE, Feature.CLONE_PROMPT_SYNTHESIZE],
};
const qwenSmall: EngineInit = {
  id: "qwen-tts",
  model: { family: "qwen3-tts", size: "0.6b" },
  features: [Feature.SYNTHESIZE, Feature.CLONE_PROMPT_SYNTHESIZE],
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

/** Adds a backend and proves it alive, as an agent's first heartbeat does. */
function addReady(registry: BackendRegistry, backend: BackendRegistration): void {
  registry.add(backend, "test");
  registry.heartbeat(backend.id);
}

function newRegistry(options: Partial<BackendRegistryOptions> = {}) {
  return createBackendRegistry({ log, ...routing, ...options });
}

function leaseError(registry: BackendRegistry, criteria: BackendCriteria): ConnectError {
  try {
    registry.lease(criteria);
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("lease should have failed");
}

const synth = { feature: Feature.SYNTHESIZE } as const;

describe("createBackendRegistry", () => {
  it("adds backends PENDING with zeroed counters and lists them by id", () => {
    const registry = newRegistry();
    registry.add(registration("b"), "test");
    registry.add(registration("a"), "test");
    expect(registry.list().map((b) => b.id)).toEqual(["a", "b"]);
    const a = registry.get("a");
    expect(a?.state).toBe(BackendState.PENDING);
    expect(a?.breaker).toBe(BreakerState.CLOSED);
    expect(a?.inFlight).toBe(0);
    expect(a?.callsTotal).toBe(0);
    expect(a?.failuresTotal).toBe(0);
    expect(a?.client).toBe(dummyClient);
    expect(registry.get("missing")).toBeUndefined();
  });

  it("records load reports and ignores them for unknown ids", () => {
    const registry = newRegistry();
    addReady(registry, registration("a"));
    const before = registry.get("a")?.lastSeenAt.getTime() ?? 0;
    const load = create(LoadReportSchema, { inFlight: 1, slots: 2, cpuRatio: 0.5 });
    registry.reportLoad("a", load);
    registry.reportLoad("ghost", load);
    expect(registry.get("a")?.load).toBe(load);
    expect(registry.get("a")?.lastSeenAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(registry.list()).toHaveLength(1);
  });
});

describe("health state machine in the registry", () => {
  it("gives a PENDING backend no work: a half-registered agent gets no call", () => {
    const registry = newRegistry();
    registry.add(registration("flapper"), "agent connected");
    const error = leaseError(registry, synth);
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe(
      "no backend offering synthesize can take the call now: flapper pending (not yet proven healthy)",
    );
    expect(registry.get("flapper")?.callsTotal).toBe(0);
    registry.heartbeat("flapper");
    expect(registry.get("flapper")?.state).toBe(BackendState.READY);
    expect(registry.lease(synth).backend.id).toBe("flapper");
  });

  it("moves READY → UNHEALTHY after two failed probes and back on a successful one", () => {
    const registry = newRegistry();
    registry.add(registration("a"), "test");
    const ok = create(HealthResponseSchema, { state: ServingState.SERVING });
    registry.reportProbe("a", { ok: true, response: ok });
    expect(registry.get("a")?.state).toBe(BackendState.READY);
    registry.reportProbe("a", { ok: false, error: "deadline of 1000 ms exceeded" });
    expect(registry.get("a")?.state).toBe(BackendState.READY);
    registry.reportProbe("a", { ok: false, error: "deadline of 1000 ms exceeded" });
    expect(registry.get("a")?.state).toBe(BackendState.UNHEALTHY);
    expect(registry.get("a")?.lastError).toBe("health probe: deadline of 1000 ms exceeded");
    expect(leaseError(registry, synth).rawMessage).toBe(
      "no backend offering synthesize can take the call now: a unhealthy (health probe: deadline of 1000 ms exceeded)",
    );
    // A heartbeat proves the link, not the serving path: still unhealthy.
    registry.heartbeat("a");
    expect(registry.get("a")?.state).toBe(BackendState.UNHEALTHY);
    registry.reportProbe("a", { ok: true, response: ok });
    expect(registry.get("a")?.state).toBe(BackendState.READY);
  });

  it("counts a timed-out probe against a serverless backend, never against a connected agent", () => {
    const registry = newRegistry();
    const ok = create(HealthResponseSchema, { state: ServingState.SERVING });
    registry.add(registration("agent"), "test");
    registry.add({ ...registration("runpod"), kind: BackendKind.SERVERLESS }, "test");
    for (const id of ["agent", "runpod"]) registry.reportProbe(id, { ok: true, response: ok });
    const timedOut = { ok: false, error: "deadline of 1000 ms exceeded", timedOut: true } as const;
    for (let i = 0; i < 3; i++) {
      registry.reportProbe("agent", timedOut);
      registry.reportProbe("runpod", timedOut);
    }
    // A saturated agent answers late: busy, not failing (its session judges its liveness).
    expect(registry.get("agent")?.state).toBe(BackendState.READY);
    expect(registry.get("runpod")?.state).toBe(BackendState.UNHEALTHY);
    // An agent that answers "not serving" or fails otherwise still counts.
    registry.reportProbe("agent", { ok: false, error: "engine crashed" });
    registry.reportProbe("agent", { ok: false, error: "engine crashed" });
    expect(registry.get("agent")?.state).toBe(BackendState.UNHEALTHY);
  });

  it("follows the backend's own serving state and load from probes", () => {
    const registry = newRegistry();
    registry.add(registration("a"), "test");
    registry.reportProbe("a", {
      ok: true,
      response: create(HealthResponseSchema, {
        state: ServingState.DRAINING,
        message: "deploy",
        load: { inFlight: 1, slots: 2 },
      }),
    });
    expect(registry.get("a")?.state).toBe(BackendState.DRAINING);
    expect(registry.get("a")?.load?.inFlight).toBe(1);
    registry.reportProbe("a", {
      ok: true,
      response: create(HealthResponseSchema, { state: ServingState.SERVING }),
    });
    expect(registry.get("a")?.state).toBe(BackendState.READY);
    registry.reportProbe("a", {
      ok: true,
      response: create(HealthResponseSchema, {
        state: ServingState.NOT_SERVING,
        message: "loading model",
      }),
    });
    registry.reportProbe("a", {
      ok: true,
      response: create(HealthResponseSchema, {
        state: ServingState.NOT_SERVING,
        message: "loading model",
      }),
    });
    expect(registry.get("a")?.state).toBe(BackendState.UNHEALTHY);
    expect(registry.get("a")?.lastError).toBe("health probe: not serving: loading model");
    // Once it serves again the outage's error is gone: lastError says what is wrong now.
    for (let i = 0; i < 3 && registry.get("a")?.state !== BackendState.READY; i++) {
      registry.reportProbe("a", {
        ok: true,
        response: create(HealthResponseSchema, { state: ServingState.SERVING }),
      });
    }
    expect(registry.get("a")?.state).toBe(BackendState.READY);
    expect(registry.get("a")?.lastError).toBe("");
  });

  it("keeps an admin drain through successful probes until undrained", () => {
    const registry = newRegistry();
    addReady(registry, registration("a"));
    registry.drain("a", "drained by admin");
    registry.reportProbe("a", {
      ok: true,
      response: create(HealthResponseSchema, { state: ServingState.SERVING }),
    });
    expect(registry.get("a")?.state).toBe(BackendState.DRAINING);
    registry.undrain("a", "undrained by admin");
    expect(registry.get("a")?.state).toBe(BackendState.READY);
  });

  it("marks a lost link UNHEALTHY with its reason", () => {
    const registry = newRegistry();
    addReady(registry, registration("a"));
    const events: BackendEvent[] = [];
    registry.watch((e) => events.push(e));
    registry.signal("a", { kind: "lost", error: "no heartbeat for 3100 ms" }, "heartbeats stopped");
    registry.remove("a", "heartbeats stopped");
    expect(events.map((e) => [e.change, e.backend.state, e.backend.lastError])).toEqual([
      ["state", BackendState.UNHEALTHY, "no heartbeat for 3100 ms"],
      ["removed", BackendState.REMOVED, "no heartbeat for 3100 ms"],
    ]);
  });
});

describe("BackendRegistry.lease", () => {
  it("picks a capable, READY backend with a free slot and counts the call", () => {
    const registry = newRegistry();
    addReady(registry, registration("draining"));
    registry.drain("draining", "test");
    addReady(registry, registration("unhealthy"));
    registry.signal("unhealthy", { kind: "lost", error: "gone" }, "test");
    addReady(registry, registration("full", { slots: 1 }));
    registry.lease({ ...synth, exclude: new Set(["ok"]) }); // fills "full"
    addReady(
      registry,
      registration("analyze-only", { engines: [{ id: "x", features: [Feature.ANALYZE] }] }),
    );
    addReady(registry, registration("ok"));

    const lease = registry.lease(synth);
    expect(lease.backend.id).toBe("ok");
    expect(registry.get("ok")?.inFlight).toBe(1);
    expect(registry.get("ok")?.callsTotal).toBe(1);
    expect(registry.get("draining")?.inFlight).toBe(0);
    expect(registry.get("unhealthy")?.inFlight).toBe(0);
    expect(registry.get("analyze-only")?.inFlight).toBe(0);
  });

  it("prefers the lower priority, even when it is more loaded", () => {
    const registry = newRegistry();
    addReady(registry, registration("cheap", { priority: 10, slots: 4 }));
    addReady(registry, registration("home-gpu", { priority: -5, slots: 4 }));
    const picks = [1, 2, 3, 4].map(() => registry.lease(synth).backend.id);
    expect(picks).toEqual(["home-gpu", "home-gpu", "home-gpu", "home-gpu"]);
    // Only when the preferred one is full does the next priority get work.
    expect(registry.lease(synth).backend.id).toBe("cheap");
  });

  it("picks the least loaded (in-flight / slots) among equal priorities", () => {
    const registry = newRegistry();
    addReady(registry, registration("small", { slots: 1 }));
    addReady(registry, registration("big", { slots: 4 }));
    const all = [1, 2, 3, 4, 5].map(() => registry.lease(synth).backend.id);
    expect(all.filter((id) => id === "small")).toHaveLength(1);
    expect(all.filter((id) => id === "big")).toHaveLength(4);

    const registry2 = newRegistry();
    addReady(registry2, registration("a", { slots: 4 }));
    addReady(registry2, registration("b", { slots: 2 }));
    registry2.lease({ ...synth, exclude: new Set(["a"]) }); // b: 1/2
    registry2.lease({ ...synth, exclude: new Set(["b"]) }); // a: 1/4
    expect(registry2.lease(synth).backend.id).toBe("a"); // 1/4 < 1/2
    expect(registry2.lease(synth).backend.id).toBe("a"); // 2/4 = 1/2: a tie, a sorts first
  });

  it("treats zero slots as one", () => {
    const registry = newRegistry();
    addReady(registry, registration("zero", { slots: 0 }));
    expect(registry.lease(synth).backend.id).toBe("zero");
    expect(leaseError(registry, synth).code).toBe(Code.Unavailable);
  });

  it("honours the exclude set", () => {
    const registry = newRegistry();
    addReady(registry, registration("a", { priority: 0 }));
    addReady(registry, registration("b", { priority: 1 }));
    expect(registry.lease({ ...synth, exclude: new Set(["a"]) }).backend.id).toBe("b");
    const error = leaseError(registry, { ...synth, exclude: new Set(["a", "b"]) });
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe("no other backend offering synthesize is connected (tried a, b)");
  });

  it("filters by engine id and model family", () => {
    const registry = newRegistry();
    addReady(registry, registration("cpu", { engines: [espeak], slots: 8 }));
    addReady(registry, registration("gpu", { engines: [qwen], priority: 5, slots: 8 }));
    expect(registry.lease({ ...synth, engine: "qwen-tts" }).backend.id).toBe("gpu");
    expect(registry.lease({ ...synth, modelFamily: "qwen3-tts" }).backend.id).toBe("gpu");
    expect(registry.lease({ ...synth, modelFamily: "espeak-ng" }).backend.id).toBe("cpu");
    expect(registry.lease({ feature: Feature.CLONE_PROMPT_CREATE }).backend.id).toBe("gpu");
    // The engine and the model must match on the same engine.
    const error = leaseError(registry, { ...synth, engine: "espeak-ng", modelFamily: "qwen3-tts" });
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toBe(
      'no connected backend offers synthesize, engine "espeak-ng", model "qwen3-tts"',
    );
  });

  it("routes a clone-prompt synthesis only to a backend whose model family and size match", () => {
    const registry = newRegistry();
    addReady(registry, registration("cpu", { engines: [espeak], slots: 8 }));
    addReady(registry, registration("big-gpu", { engines: [qwen], priority: 5, slots: 8 }));
    addReady(registry, registration("small-gpu", { engines: [qwenSmall], priority: 0, slots: 8 }));
    const clone = (size: string): BackendCriteria => ({
      feature: Feature.CLONE_PROMPT_SYNTHESIZE,
      modelFamily: "qwen3-tts",
      modelSize: size,
    });
    // small-gpu has the better priority but the wrong size: the prompt made by 1.7b goes to big-gpu.
    for (let i = 0; i < 5; i++) expect(registry.lease(clone("1.7b")).backend.id).toBe("big-gpu");
    expect(registry.lease(clone("0.6b")).backend.id).toBe("small-gpu");
    expect(registry.get("cpu")?.callsTotal).toBe(0);

    const missing = leaseError(registry, clone("7b"));
    expect(missing.code).toBe(Code.FailedPrecondition);
    expect(missing.rawMessage).toBe(
      'no connected backend offers clone_prompt_synthesize, model "qwen3-tts 7b"',
    );
    // The capable backend exists but is draining: that is UNAVAILABLE, naming why.
    registry.drain("big-gpu", "test");
    const draining = leaseError(registry, clone("1.7b"));
    expect(draining.code).toBe(Code.Unavailable);
    expect(draining.rawMessage).toBe(
      'no backend offering clone_prompt_synthesize, model "qwen3-tts 1.7b" can take the call now: big-gpu draining',
    );
  });

  describe("failure messages", () => {
    it("says nothing is connected and how to fix it (UNAVAILABLE: one may connect any moment)", () => {
      const registry = newRegistry();
      const error = leaseError(registry, synth);
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toContain("no backend is connected");
      expect(error.rawMessage).toContain("voxgate agent --gateway HOST:PORT");
    });

    it("names the missing feature or engine with FAILED_PRECONDITION", () => {
      const registry = newRegistry();
      addReady(registry, registration("a"));
      const analyze = leaseError(registry, { feature: Feature.ANALYZE });
      expect(analyze.code).toBe(Code.FailedPrecondition);
      expect(analyze.rawMessage).toBe("no connected backend offers analyze");
      expect(leaseError(registry, { ...synth, engine: "piper" }).rawMessage).toBe(
        'no connected backend offers synthesize, engine "piper"',
      );
    });

    it("names why each capable backend cannot take the call", () => {
      const registry = newRegistry({
        breaker: { ...routing.breaker, failureThreshold: 1, cooldownMs: 60_000 },
      });
      addReady(registry, registration("a"));
      addReady(registry, registration("b"));
      addReady(registry, registration("c"));
      registry.add(registration("d"), "test");
      registry.drain("a", "test");
      registry.signal("b", { kind: "lost", error: "agent connection lost" }, "test");
      registry.lease(synth).release("backend-failure", "engine crashed");
      expect(registry.get("c")?.breaker).toBe(BreakerState.OPEN);
      const error = leaseError(registry, synth);
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toBe(
        "no backend offering synthesize can take the call now: a draining; " +
          "b unhealthy (agent connection lost); c breaker open; d pending (not yet proven healthy)",
      );
    });

    it("says when every capable backend is busy", () => {
      const registry = newRegistry();
      addReady(registry, registration("a", { slots: 1 }));
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

describe("circuit breaker in the registry", () => {
  it("ejects a backend failing every other call, and takes it back after the cooldown", () => {
    let now = 1_000_000;
    const registry = newRegistry({
      now: () => now,
      breaker: {
        ...routing.breaker,
        failureThreshold: 5,
        failureRatio: 0.5,
        windowCalls: 6,
        cooldownMs: 5_000,
      },
    });
    addReady(registry, registration("flaky", { priority: 0, slots: 4 }));
    addReady(registry, registration("steady", { priority: 1, slots: 4 }));
    const events: BackendEvent[] = [];
    registry.watch((e) => {
      if (e.change === "breaker") events.push(e);
    });
    const served: string[] = [];
    for (let i = 0; i < 10; i++) {
      const lease = registry.lease(synth);
      served.push(lease.backend.id);
      lease.release(
        lease.backend.id === "flaky" && i % 2 === 0 ? "backend-failure" : "ok",
        "engine crashed",
      );
    }
    // Six calls (three failed) on flaky open the breaker; the rest go to steady.
    expect(served.slice(0, 6)).toEqual(Array(6).fill("flaky"));
    expect(served.slice(6)).toEqual(Array(4).fill("steady"));
    expect(registry.get("flaky")?.breaker).toBe(BreakerState.OPEN);
    expect(registry.get("flaky")?.state).toBe(BackendState.READY);
    expect(events[0]?.reason).toBe(
      "breaker opened: 3 of the last 6 calls failed: engine crashed; cooldown 5000 ms",
    );

    now += 5_000;
    // Half-open: one trial at a time.
    const trial = registry.lease(synth);
    expect(trial.backend.id).toBe("flaky");
    expect(registry.get("flaky")?.breaker).toBe(BreakerState.HALF_OPEN);
    expect(registry.lease(synth).backend.id).toBe("steady");
    trial.release("ok");
    const second = registry.lease(synth);
    expect(second.backend.id).toBe("flaky");
    second.release("ok");
    expect(registry.get("flaky")?.breaker).toBe(BreakerState.CLOSED);
    expect(events.map((e) => e.backend.breaker)).toEqual([
      BreakerState.OPEN,
      BreakerState.HALF_OPEN,
      BreakerState.CLOSED,
    ]);
  });

  it("does not count busy backends or callers who left against the breaker", () => {
    const registry = newRegistry({
      breaker: { ...routing.breaker, failureThreshold: 1 },
      busyHoldMs: 0,
    });
    addReady(registry, registration("a", { slots: 4 }));
    registry.lease(synth).release("backend-busy", "all 4 slots are busy");
    registry.lease(synth).release("caller-gone", "client went away");
    expect(registry.get("a")?.breaker).toBe(BreakerState.CLOSED);
    expect(registry.get("a")?.failuresTotal).toBe(0);
  });
});

describe("a backend full after all (its slots serve other gateways too)", () => {
  it("counts as busy until its load report shows a free slot", () => {
    const registry = newRegistry({ busyHoldMs: 60_000 });
    addReady(registry, registration("a", { slots: 4 }));
    registry.lease(synth).release("backend-busy", "all 4 slots are busy");
    const error = leaseError(registry, synth);
    expect(error.rawMessage).toBe(
      "every backend offering synthesize is busy (all slots in use); retry shortly",
    );
    // Still full by its own report: still busy.
    registry.heartbeat("a", create(LoadReportSchema, { inFlight: 4, slots: 4 }));
    expect(() => registry.lease(synth)).toThrow(/busy/);
    registry.heartbeat("a", create(LoadReportSchema, { inFlight: 3, slots: 4 }));
    expect(registry.lease(synth).backend.id).toBe("a");
  });

  it("counts as busy only for busyHoldMs", async () => {
    const registry = newRegistry({ busyHoldMs: 30 });
    addReady(registry, registration("a", { slots: 4 }));
    registry.lease(synth).release("backend-busy", "all 4 slots are busy");
    expect(() => registry.lease(synth)).toThrow(/busy/);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(registry.lease(synth).backend.id).toBe("a");
  });
});

describe("the backend's own load reports", () => {
  const load = (inFlight: number, slots: number) =>
    create(LoadReportSchema, { inFlight, slots, cpuRatio: 0, rssBytes: 0n });

  it("routes nothing to a backend that reports every slot in use twice in a row, and again once it reports free slots", () => {
    const registry = newRegistry();
    addReady(registry, registration("a", { slots: 2 }));
    registry.heartbeat("a", load(2, 2));
    // One report may have crossed a call's end: still routed.
    registry.lease(synth).release("ok");
    registry.heartbeat("a", load(2, 2));
    registry.heartbeat("a", load(2, 2));
    const error = leaseError(registry, synth);
    expect(Code[error.code]).toBe("Unavailable");
    expect(error.rawMessage).toMatch(/every backend offering synthesize is busy/);
    registry.heartbeat("a", load(0, 2));
    expect(registry.lease(synth).backend.id).toBe("a");
  });

  it("counts busy refusals, three in a row, from a backend that reports free slots as a failure: the breaker opens and says why", () => {
    const registry = newRegistry({ breaker: { ...routing.breaker, failureThreshold: 1 } });
    addReady(registry, registration("a", { slots: 2 }));
    for (let i = 0; i < 3; i++) {
      // Each report shows free slots (and ends the busy hold), yet the next call is refused.
      registry.heartbeat("a", load(0, 2));
      expect(registry.get("a")?.breaker).toBe(BreakerState.CLOSED);
      registry.lease(synth).release("backend-busy", "all 2 slots are busy");
    }
    const backend = registry.get("a");
    expect(backend?.breaker).toBe(BreakerState.OPEN);
    expect(backend?.failuresTotal).toBe(1);
    expect(backend?.lastError).toBe(
      "refuses calls as busy (all 2 slots are busy) while reporting 0/2 slots in use",
    );
    expect(leaseError(registry, synth).rawMessage).toMatch(/breaker open/);
  });
});

describe("busy refusals from an agent shared by several gateways", () => {
  it("count once per report: a burst refused against one stale idle report (a starved agent's late heartbeat) leaves the breaker closed", () => {
    const registry = newRegistry({
      breaker: { ...routing.breaker, failureThreshold: 1 },
      busyHoldMs: 0,
    });
    addReady(registry, registration("a", { slots: 2 }));
    // Idle before the burst; the next heartbeat is late, and every refusal meets this report.
    registry.heartbeat("a", create(LoadReportSchema, { inFlight: 0, slots: 2 }));
    for (let i = 0; i < 12; i++) {
      registry.lease(synth).release("backend-busy", "all 2 slots are busy");
    }
    expect(registry.get("a")?.breaker).toBe(BreakerState.CLOSED);
    expect(registry.get("a")?.failuresTotal).toBe(0);
    // The late heartbeat shows the slots taken (by the other replicas): still load.
    registry.heartbeat("a", create(LoadReportSchema, { inFlight: 2, slots: 2 }));
    registry.heartbeat("a", create(LoadReportSchema, { inFlight: 1, slots: 2 }));
    registry.lease(synth).release("backend-busy", "all 2 slots are busy");
    expect(registry.get("a")?.breaker).toBe(BreakerState.CLOSED);
  });

  it("are load, not a fault, while its reports show calls in flight: the breaker stays closed", () => {
    const registry = newRegistry({ breaker: { ...routing.breaker, failureThreshold: 1 } });
    addReady(registry, registration("a", { slots: 2 }));
    for (let i = 0; i < 5; i++) {
      // A free slot in the report that another replica takes first.
      registry.heartbeat("a", create(LoadReportSchema, { inFlight: 1, slots: 2 }));
      registry.lease(synth).release("backend-busy", "all 2 slots are busy");
    }
    expect(registry.get("a")?.breaker).toBe(BreakerState.CLOSED);
    expect(registry.get("a")?.failuresTotal).toBe(0);
  });
});

describe("BackendLease.release", () => {
  it("frees the slot once, however often it is called", () => {
    const registry = newRegistry();
    addReady(registry, registration("a", { slots: 1 }));
    const lease = registry.lease(synth);
    expect(registry.get("a")?.inFlight).toBe(1);
    lease.release("ok");
    lease.release("ok");
    lease.release("backend-failure", "late");
    expect(registry.get("a")?.inFlight).toBe(0);
    expect(registry.get("a")?.failuresTotal).toBe(0);
    expect(registry.get("a")?.lastError).toBe("");
    expect(registry.lease(synth).backend.id).toBe("a");
    expect(registry.get("a")?.callsTotal).toBe(2);
  });

  it("counts failures on backend-failure only, keeping the error", () => {
    const registry = newRegistry();
    addReady(registry, registration("a", { slots: 4 }));
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
    const registry = newRegistry();
    addReady(registry, registration("a"));
    const before = registry.get("a")?.lastSeenAt.getTime() ?? 0;
    const lease = registry.lease(synth);
    await new Promise((resolve) => setTimeout(resolve, 5));
    lease.release("ok");
    expect(registry.get("a")?.lastSeenAt.getTime()).toBeGreaterThan(before);
  });

  it("stays valid after the backend was removed", () => {
    const registry = newRegistry();
    addReady(registry, registration("a"));
    const lease = registry.lease(synth);
    registry.remove("a", "agent gone");
    expect(() => lease.release("backend-failure", "agent gone")).not.toThrow();
    expect(lease.backend.failuresTotal).toBe(1);
    expect(lease.backend.inFlight).toBe(0);
    expect(registry.get("a")).toBeUndefined();
  });
});

describe("BackendRegistry.watch", () => {
  it("reports add, state changes and remove with snapshots, until unsubscribed", () => {
    const registry = newRegistry();
    const events: BackendEvent[] = [];
    const unsubscribe = registry.watch((event) => events.push(event));
    registry.add(registration("a"), "agent connected");
    registry.heartbeat("a");
    registry.heartbeat("a"); // no change, no event
    registry.drain("a", "agent draining: deploy");
    registry.drain("a", "again"); // no change, no event
    registry.drain("ghost", "unknown"); // ignored
    registry.remove("a", "agent left");
    registry.remove("a", "twice"); // already gone, no event
    expect(events.map((e) => [e.backend.id, e.change, e.backend.state, e.reason])).toEqual([
      ["a", "added", BackendState.PENDING, "agent connected"],
      ["a", "state", BackendState.READY, "first heartbeat"],
      ["a", "state", BackendState.DRAINING, "agent draining: deploy"],
      ["a", "removed", BackendState.REMOVED, "agent left"],
    ]);
    expect(events.every((e) => e.time instanceof Date)).toBe(true);
    // Snapshots do not change with the live backend.
    expect(events[0]?.backend.state).toBe(BackendState.PENDING);

    unsubscribe();
    registry.add(registration("b"), "after unsubscribe");
    expect(events).toHaveLength(4);
  });

  it("serves several watchers independently", () => {
    const registry = newRegistry();
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
  it("keeps the counters and comes back PENDING with the new registration and a closed breaker", () => {
    const registry = newRegistry({ breaker: { ...routing.breaker, failureThreshold: 1 } });
    addReady(registry, registration("a", { slots: 4 }));
    registry.lease(synth).release("ok");
    registry.lease(synth); // still running
    registry.lease(synth).release("backend-failure", "boom");
    expect(registry.get("a")?.breaker).toBe(BreakerState.OPEN);
    registry.drain("a", "draining");

    const fresh = { ...registration("a", { slots: 8, priority: 3 }), version: "2" };
    registry.add(fresh, "agent reconnected");
    const a = registry.get("a");
    expect(a?.state).toBe(BackendState.PENDING);
    expect(a?.breaker).toBe(BreakerState.CLOSED);
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
    const registry = newRegistry({ breaker: { ...routing.breaker, failureThreshold: 1 } });
    addReady(registry, registration("a", { slots: 1 }));
    const running = registry.lease(synth);
    addReady(registry, registration("a", { slots: 1 }));
    expect(registry.get("a")?.inFlight).toBe(1);
    running.release("backend-failure", "old session lost");
    expect(registry.get("a")?.inFlight).toBe(0);
    expect(registry.get("a")?.failuresTotal).toBe(1);
    // The old session's failure does not open the new session's breaker.
    expect(registry.get("a")?.breaker).toBe(BreakerState.CLOSED);
    expect(registry.lease(synth).backend.id).toBe("a");
  });
});
