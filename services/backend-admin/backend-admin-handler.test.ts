import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import {
  BackendAdminService,
  BackendKind,
  BackendState,
  BreakerState,
  type WatchBackendsResponse,
} from "../../gen/voxgate/v1/backend_admin_pb.js";
import { CapabilitiesSchema, Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import { settingDefaults } from "../../services/config/settings.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import { routingOptionsFromSettings } from "../../services/registry/backend-registry.js";
import {
  type BackendRegistration,
  createBackendRegistry,
  type GpuBackendClient,
} from "../registry/index.js";
import { createBackendAdminHandler } from "./backend-admin-handler.js";

/** Routing options a started gateway has by default (its settings' defaults). */
const routing = routingOptionsFromSettings(settingDefaults(gatewaySettings));

const log = pino({ level: "silent" });
const synth = { feature: Feature.SYNTHESIZE } as const;

function registration(id: string): BackendRegistration {
  return {
    id,
    kind: BackendKind.AGENT,
    client: { name: id } as unknown as GpuBackendClient,
    capabilities: create(CapabilitiesSchema, {
      slots: 2,
      engines: [{ id: "espeak-ng", features: [Feature.SYNTHESIZE] }],
    }),
    priority: 0,
    version: "1.0",
    address: `10.0.0.1:${id}`,
    labels: {},
  };
}

function setup() {
  let now = 0;
  const registry = createBackendRegistry({
    log,
    ...routing,
    now: () => now,
    breaker: { ...routing.breaker, failureThreshold: 2, cooldownMs: 1000, halfOpenSuccesses: 1 },
  });
  const transport = createRouterTransport(({ service }) => {
    service(BackendAdminService, createBackendAdminHandler({ registry }));
  });
  const admin = createClient(BackendAdminService, transport);
  return { registry, admin, advance: (ms: number) => (now += ms) };
}

describe("BackendAdminService", () => {
  it("lists backends with state, breaker, load and last error", async () => {
    const { registry, admin } = setup();
    registry.add(registration("gpu-1"), "agent connected");
    registry.heartbeat("gpu-1");
    registry.add(registration("gpu-2"), "agent connected");
    const running = registry.lease(synth);
    registry.lease(synth).release("backend-failure", "engine crashed");
    registry.lease(synth).release("backend-failure", "engine crashed again");

    const { backends } = await admin.listBackends({});
    expect(
      backends.map((b) => [b.id, b.state, b.breaker, b.inFlight, b.lastError, b.failuresTotal]),
    ).toEqual([
      ["gpu-1", BackendState.READY, BreakerState.OPEN, 1, "engine crashed again", 2n],
      ["gpu-2", BackendState.PENDING, BreakerState.CLOSED, 0, "", 0n],
    ]);
    running.release("ok");
    const metrics = Buffer.from((await admin.getMetrics({})).data).toString();
    expect(metrics).toContain('voxgate_backend_breaker_open{backend="gpu-1"} 1');
    expect(metrics).toContain('voxgate_backends{state="pending"} 1');
  });

  it("streams health events: current state first, then each transition with its reason", async () => {
    const { registry, admin, advance } = setup();
    registry.add(registration("gpu-1"), "agent connected");
    const controller = new AbortController();
    const events: WatchBackendsResponse[] = [];
    const watching = (async () => {
      try {
        for await (const event of admin.watchBackends({}, { signal: controller.signal })) {
          events.push(event);
        }
      } catch (err) {
        if (ConnectError.from(err).code !== Code.Canceled) throw err;
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 20));
    registry.heartbeat("gpu-1");
    registry.lease(synth).release("backend-failure", "boom");
    registry.lease(synth).release("backend-failure", "boom");
    advance(1000);
    registry.lease(synth).release("ok");
    registry.reportProbe("gpu-1", { ok: false, error: "deadline of 1000 ms exceeded" });
    registry.reportProbe("gpu-1", { ok: false, error: "deadline of 1000 ms exceeded" });
    await admin.drainBackend({ backendId: "gpu-1" });
    registry.remove("gpu-1", "agent connection lost");
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    await watching;

    expect(events.map((e) => [BackendState[e.backend?.state ?? 0], e.reason])).toEqual([
      ["PENDING", "current state"],
      ["READY", "first heartbeat"],
      ["READY", "breaker opened: 2 calls in a row failed: boom; cooldown 1000 ms"],
      ["READY", "cooldown over: trial call"],
      ["READY", "breaker closed after 1 successful trial calls"],
      ["UNHEALTHY", "health probe failed: deadline of 1000 ms exceeded"],
      ["DRAINING", "drained by admin"],
      ["REMOVED", "agent connection lost"],
    ]);
    expect(events.map((e) => BreakerState[e.backend?.breaker ?? 0]).slice(1, 5)).toEqual([
      "CLOSED",
      "OPEN",
      "HALF_OPEN",
      "CLOSED",
    ]);
  });

  it("drains and undrains one backend; unknown ids are NOT_FOUND", async () => {
    const { registry, admin } = setup();
    registry.add(registration("gpu-1"), "agent connected");
    registry.heartbeat("gpu-1");
    expect((await admin.drainBackend({ backendId: "gpu-1" })).backend?.state).toBe(
      BackendState.DRAINING,
    );
    expect(() => registry.lease(synth)).toThrow(/gpu-1 draining/);
    expect((await admin.undrainBackend({ backendId: "gpu-1" })).backend?.state).toBe(
      BackendState.READY,
    );
    expect(registry.lease(synth).backend.id).toBe("gpu-1");
    const error = await admin.drainBackend({ backendId: "ghost" }).then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    expect(error?.code).toBe(Code.NotFound);
    expect(error?.rawMessage).toBe('backend "ghost" is not registered');
  });
});
