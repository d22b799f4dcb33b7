import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { BackendKind, BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { CapabilitiesSchema, Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import { GPUBackendService, ServingState } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { settingDefaults } from "../../services/config/settings.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import type { BackendRegistration } from "./backend.js";
import {
  type BackendEvent,
  createBackendRegistry,
  routingOptionsFromSettings,
} from "./backend-registry.js";
import { createHealthProber, type HealthProber } from "./health-prober.js";

/** Routing options a started gateway has by default (its settings' defaults). */
const routing = routingOptionsFromSettings(settingDefaults(gatewaySettings));

const log = pino({ level: "silent" });

/** How the fake backend answers Health, changeable during a test. */
interface FakeHealth {
  mode: "serving" | "draining" | "error" | "hang";
  calls: number;
}

/** A backend reached through a real Connect client over an in-memory transport. */
function fakeBackend(id: string, health: FakeHealth): BackendRegistration {
  const transport = createRouterTransport(({ service }) => {
    service(GPUBackendService, {
      async health(_request, context) {
        health.calls++;
        switch (health.mode) {
          case "serving":
            return { state: ServingState.SERVING, load: { inFlight: 1, slots: 2 } };
          case "draining":
            return { state: ServingState.DRAINING, message: "deploy" };
          case "error":
            throw new ConnectError("engine not loaded", Code.Unavailable);
          case "hang":
            await new Promise((resolve) => context.signal.addEventListener("abort", resolve));
            throw new ConnectError("aborted", Code.Canceled);
        }
      },
    });
  });
  return {
    id,
    kind: BackendKind.SERVERLESS,
    client: createClient(GPUBackendService, transport),
    capabilities: create(CapabilitiesSchema, {
      slots: 2,
      engines: [{ id: "e", features: [Feature.SYNTHESIZE] }],
    }),
    priority: 0,
    version: "test",
    address: id,
    labels: {},
  };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const probers: HealthProber[] = [];
afterEach(async () => {
  await Promise.all(probers.splice(0).map((p) => p.stop()));
});

describe("createHealthProber", () => {
  it("probes a new backend at once and makes it READY, recording its load", async () => {
    const registry = createBackendRegistry({ log, ...routing });
    const prober = createHealthProber({ registry, log, intervalMs: 60_000, timeoutMs: 500 });
    probers.push(prober);
    prober.start();
    const health: FakeHealth = { mode: "serving", calls: 0 };
    registry.add(fakeBackend("a", health), "static backend");
    expect(registry.get("a")?.state).toBe(BackendState.PENDING);
    await waitFor(() => registry.get("a")?.state === BackendState.READY, "READY");
    expect(health.calls).toBe(1);
    expect(registry.get("a")?.load?.inFlight).toBe(1);
  });

  it("marks a backend UNHEALTHY after two failed or timed-out probes and READY after it recovers", async () => {
    const registry = createBackendRegistry({ log, ...routing });
    const prober = createHealthProber({ registry, log, intervalMs: 60_000, timeoutMs: 100 });
    probers.push(prober);
    const health: FakeHealth = { mode: "serving", calls: 0 };
    registry.add(fakeBackend("a", health), "test");
    await prober.probeAll();
    expect(registry.get("a")?.state).toBe(BackendState.READY);

    health.mode = "hang";
    const started = performance.now();
    await prober.probeAll();
    await prober.probeAll();
    // Two probes, each cut at its 100 ms deadline.
    expect(performance.now() - started).toBeLessThan(1000);
    expect(registry.get("a")?.state).toBe(BackendState.UNHEALTHY);
    expect(registry.get("a")?.lastError).toMatch(/^health probe: /);

    health.mode = "error";
    await prober.probeAll();
    expect(registry.get("a")?.state).toBe(BackendState.UNHEALTHY);
    expect(registry.get("a")?.lastError).toBe("health probe: engine not loaded");

    health.mode = "serving";
    await prober.probeAll();
    expect(registry.get("a")?.state).toBe(BackendState.READY);
  });

  it("probes on its interval, reports a backend's own drain, and skips a backend still being probed", async () => {
    const registry = createBackendRegistry({ log, ...routing });
    const prober = createHealthProber({ registry, log, intervalMs: 50, timeoutMs: 1000 });
    probers.push(prober);
    const events: BackendEvent[] = [];
    registry.watch((e) => events.push(e));
    const health: FakeHealth = { mode: "serving", calls: 0 };
    registry.add(fakeBackend("a", health), "test");
    prober.start();
    await waitFor(() => health.calls >= 3, "three probes");
    health.mode = "draining";
    await waitFor(() => registry.get("a")?.state === BackendState.DRAINING, "DRAINING");
    expect(events.at(-1)?.reason).toBe("backend draining: deploy");

    health.mode = "hang";
    const before = health.calls;
    await new Promise((resolve) => setTimeout(resolve, 300));
    // One probe hangs (until its 1 s deadline); the interval does not stack more on it.
    expect(health.calls - before).toBe(1);
  });

  it("stops: no more probes, running ones are cut", async () => {
    const registry = createBackendRegistry({ log, ...routing });
    const prober = createHealthProber({ registry, log, intervalMs: 20, timeoutMs: 10_000 });
    const health: FakeHealth = { mode: "hang", calls: 0 };
    registry.add(fakeBackend("a", health), "test");
    prober.start();
    await waitFor(() => health.calls === 1, "a probe");
    const started = performance.now();
    await prober.stop();
    await prober.stop();
    expect(performance.now() - started).toBeLessThan(500);
    const calls = health.calls;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(health.calls).toBe(calls);
    // A probe cut by stop() is no verdict on the backend.
    expect(registry.get("a")?.state).toBe(BackendState.PENDING);
  });
});
