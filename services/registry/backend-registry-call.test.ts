/**
 * The registry's retry loop: failover only before the first item reached the caller, one deadline
 * over every attempt, passive outcomes feeding the breaker.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { BackendKind, BreakerState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { CapabilitiesSchema, Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import { settingDefaults } from "../../services/config/settings.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import type { BackendRegistration, GpuBackendClient } from "./backend.js";
import {
  type BackendAttempt,
  type BackendRegistry,
  type BackendRegistryOptions,
  createBackendRegistry,
  routingOptionsFromSettings,
} from "./backend-registry.js";

/** Routing options a started gateway has by default (its settings' defaults). */
const routing = routingOptionsFromSettings(settingDefaults(gatewaySettings));

const log = pino({ level: "silent" });
const synth = { feature: Feature.SYNTHESIZE } as const;

function registration(id: string, priority: number): BackendRegistration {
  return {
    id,
    kind: BackendKind.AGENT,
    client: { name: id } as unknown as GpuBackendClient,
    capabilities: create(CapabilitiesSchema, {
      slots: 2,
      engines: [{ id: "e", features: [Feature.SYNTHESIZE] }],
    }),
    priority,
    version: "test",
    address: id,
    labels: {},
  };
}

/** A registry with READY backends a (priority 0), b (1), c (2). */
function registryOf(ids = ["a", "b", "c"], options: Partial<BackendRegistryOptions> = {}) {
  const registry = createBackendRegistry({ log, ...routing, ...options });
  ids.forEach((id, priority) => {
    registry.add(registration(id, priority), "test");
    registry.heartbeat(id);
  });
  return registry;
}

type Script = Record<string, (attempt: BackendAttempt) => AsyncGenerator<string>>;

/** Runs a call whose attempt on each backend follows `script`; collects items and the outcome. */
async function runCall(
  registry: BackendRegistry,
  script: Script,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
) {
  const items: string[] = [];
  const attempts: BackendAttempt[] = [];
  let served: { backend: string; attempts: number } | undefined;
  let error: ConnectError | undefined;
  try {
    for await (const item of registry.call(
      synth,
      {
        ...options,
        onFirstItem: (backend, n) => {
          served = { backend: backend.id, attempts: n };
        },
      },
      (attempt) => {
        attempts.push(attempt);
        const run = script[attempt.backend.id];
        if (!run) throw new Error(`no script for ${attempt.backend.id}`);
        return run(attempt);
      },
    )) {
      items.push(item);
    }
  } catch (err) {
    error = ConnectError.from(err);
  }
  return { items, attempts, served, error };
}

const fails = (code: Code, message = "boom") =>
  // biome-ignore lint/correctness/useYield: fails before its first item
  async function* () {
    throw new ConnectError(message, code);
  };
const speaks = (...items: string[]) =>
  async function* () {
    yield* items;
  };

describe("BackendRegistry.call", () => {
  it("serves from the first backend when it works, naming it", async () => {
    const registry = registryOf();
    const result = await runCall(registry, { a: speaks("1", "2") });
    expect(result.items).toEqual(["1", "2"]);
    expect(result.served).toEqual({ backend: "a", attempts: 1 });
    expect(result.error).toBeUndefined();
    expect(registry.get("a")?.inFlight).toBe(0);
    expect(registry.get("a")?.callsTotal).toBe(1);
  });

  it("moves to the next backend when one fails, is full or is unreachable before any item", async () => {
    const registry = registryOf();
    const result = await runCall(registry, {
      a: fails(Code.Unavailable, "agent a lost the call"),
      b: fails(Code.ResourceExhausted, "all 2 slots are busy"),
      c: speaks("whole"),
    });
    expect(result.items).toEqual(["whole"]);
    // b being full costs no attempt: c serves the second.
    expect(result.served).toEqual({ backend: "c", attempts: 2 });
    expect(result.attempts.map((a) => [a.backend.id, a.attempt])).toEqual([
      ["a", 1],
      ["b", 2],
      ["c", 2],
    ]);
    // a failed (counts), b was only full (does not), every slot is free again.
    expect(registry.get("a")?.failuresTotal).toBe(1);
    expect(registry.get("a")?.lastError).toBe("agent a lost the call");
    expect(registry.get("b")?.failuresTotal).toBe(0);
    expect(registry.list().map((b) => b.inFlight)).toEqual([0, 0, 0]);
  });

  it("ends with an error naming the backend, never a clean end, when it fails after an item", async () => {
    const registry = registryOf();
    const result = await runCall(registry, {
      a: async function* () {
        yield "first";
        throw new ConnectError("agent a lost the call: connection reset", Code.Unavailable);
      },
      b: speaks("should not be used"),
    });
    expect(result.items).toEqual(["first"]);
    expect(result.attempts).toHaveLength(1);
    expect(result.error?.code).toBe(Code.Unavailable);
    expect(result.error?.rawMessage).toBe(
      "backend a failed after audio was sent (the audio is incomplete): agent a lost the call: connection reset",
    );
    expect(registry.get("a")?.failuresTotal).toBe(1);

    const internal = await runCall(registryOf(), {
      a: async function* () {
        yield "first";
        throw new ConnectError("engine crashed", Code.Internal);
      },
    });
    expect(internal.error?.code).toBe(Code.Aborted);
  });

  it("does not retry the caller's mistakes and does not count them against the backend", async () => {
    const registry = registryOf();
    const result = await runCall(registry, {
      a: fails(Code.InvalidArgument, "text is empty"),
      b: speaks("x"),
    });
    expect(result.error?.code).toBe(Code.InvalidArgument);
    expect(result.error?.rawMessage).toBe("text is empty");
    expect(result.attempts).toHaveLength(1);
    expect(registry.get("a")?.failuresTotal).toBe(0);
  });

  it("names every failed backend when none is left", async () => {
    const registry = registryOf(["a", "b"]);
    const result = await runCall(registry, {
      a: fails(Code.Unavailable, "agent a lost the call"),
      b: fails(Code.Internal, "engine crashed"),
    });
    expect(result.error?.code).toBe(Code.Unavailable);
    expect(result.error?.rawMessage).toBe(
      "backend a failed: agent a lost the call; backend b failed: engine crashed; " +
        "no other backend offering synthesize is connected (tried a, b)",
    );
  });

  it("stops after maxAttempts", async () => {
    const registry = registryOf(["a", "b", "c"], { maxAttempts: 2 });
    const result = await runCall(registry, {
      a: fails(Code.Unavailable, "down"),
      b: fails(Code.Unavailable, "down too"),
      c: speaks("never"),
    });
    expect(result.attempts.map((a) => a.backend.id)).toEqual(["a", "b"]);
    expect(result.error?.code).toBe(Code.Unavailable);
    expect(result.error?.rawMessage).toBe("backend a failed: down; backend b failed: down too");
  });

  it("answers at once when nothing can serve, naming why", async () => {
    const registry = registryOf(["a"]);
    registry.drain("a", "test");
    const started = performance.now();
    const result = await runCall(registry, { a: speaks("never") });
    expect(performance.now() - started).toBeLessThan(100);
    expect(result.error?.code).toBe(Code.Unavailable);
    expect(result.error?.rawMessage).toBe(
      "no backend offering synthesize can take the call now: a draining",
    );
  });

  it("gives each attempt what is left of one overall deadline", async () => {
    const registry = registryOf(["a", "b"]);
    const result = await runCall(
      registry,
      {
        a: async function* () {
          await new Promise((resolve) => setTimeout(resolve, 150));
          throw new ConnectError("slow and broken", Code.Unavailable);
        },
        b: speaks("ok"),
      },
      { timeoutMs: 1000 },
    );
    expect(result.items).toEqual(["ok"]);
    const [first, second] = result.attempts;
    expect(first?.timeoutMs).toBeGreaterThan(900);
    expect(first?.timeoutMs).toBeLessThanOrEqual(1000);
    expect(second?.timeoutMs).toBeLessThanOrEqual(1000 - 140);
  });

  it("does not retry once the overall deadline is spent", async () => {
    const registry = registryOf(["a", "b"]);
    const result = await runCall(
      registry,
      {
        a: async function* ({ timeoutMs }) {
          await new Promise((resolve) => setTimeout(resolve, timeoutMs));
          throw new ConnectError(`deadline of ${timeoutMs} ms exceeded`, Code.DeadlineExceeded);
        },
        b: speaks("too late"),
      },
      { timeoutMs: 50 },
    );
    expect(result.error?.code).toBe(Code.DeadlineExceeded);
    expect(result.attempts).toHaveLength(1);
  });

  it("stops when the caller goes away, freeing the slot without blaming the backend", async () => {
    const registry = registryOf(["a", "b"]);
    const controller = new AbortController();
    const result = await runCall(
      registry,
      {
        a: async function* ({ signal }) {
          yield "first";
          controller.abort(new ConnectError("client went away", Code.Canceled));
          await new Promise((resolve) => setTimeout(resolve, 5));
          signal.throwIfAborted();
          yield "never";
        },
      },
      { signal: controller.signal },
    );
    expect(result.items).toEqual(["first"]);
    expect(result.error?.code).toBe(Code.Canceled);
    expect(result.attempts).toHaveLength(1);
    expect(registry.get("a")?.inFlight).toBe(0);
    expect(registry.get("a")?.failuresTotal).toBe(0);
  });

  it("frees the slot when the caller stops reading early", async () => {
    const registry = registryOf(["a"]);
    const call = registry.call(synth, {}, speaks("1", "2", "3"));
    expect((await call.next()).value).toBe("1");
    expect(registry.get("a")?.inFlight).toBe(1);
    await call.return(undefined);
    expect(registry.get("a")?.inFlight).toBe(0);
    expect(registry.get("a")?.failuresTotal).toBe(0);
  });

  it("feeds the breaker: a backend that keeps failing first is skipped until its cooldown ends", async () => {
    let now = 0;
    const registry = registryOf(["a", "b"], {
      now: () => now,
      breaker: { ...routing.breaker, failureThreshold: 2, cooldownMs: 1000 },
    });
    const script = { a: fails(Code.Unavailable, "down"), b: speaks("ok") };
    expect((await runCall(registry, script)).served).toEqual({ backend: "b", attempts: 2 });
    expect((await runCall(registry, script)).served).toEqual({ backend: "b", attempts: 2 });
    expect(registry.get("a")?.breaker).toBe(BreakerState.OPEN);
    expect((await runCall(registry, script)).served).toEqual({ backend: "b", attempts: 1 });
    now += 1000;
    const trial = await runCall(registry, { a: speaks("back"), b: speaks("ok") });
    expect(trial.served).toEqual({ backend: "a", attempts: 1 });
    expect(registry.get("a")?.breaker).toBe(BreakerState.HALF_OPEN);
  });
});
