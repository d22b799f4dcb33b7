/**
 * Test helper for failover tests in one process: a real gateway on 127.0.0.1:0 and any number of
 * real Agents dialling it over gRPC, each hosting a fake engine behind the real engine host. A
 * {@link FaultSwitch} in front of an agent's handler injects failures into its calls, so a test can
 * make one backend fail every other call, or every call, and heal it again.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { pino } from "pino";
import {
  createVoxgateClient,
  type VoxgateClient,
  type VoxgateClientOptions,
} from "../../clients/voxgate-client.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { Capabilities } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { GPUBackendService, LoadReportSchema } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { Agent, agentLinkOptionsFromSettings } from "../../services/agent/agent.js";
import { agentSettings } from "../../services/agent/agent-settings.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { settingDefaults } from "../../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../../services/engine-host/engine-host-handler.js";
import {
  createEngineHost,
  describeEngines,
  type EngineHost,
} from "../../services/engine-host/index.js";
import {
  createGateway,
  type Gateway,
  type GatewayAddresses,
  type GatewayOptions,
} from "../../services/gateway/index.js";
import {
  createInProcessFakeEngine,
  type InProcessFakeEngine,
  type InProcessFakeEngineOptions,
} from "./in-process-fake-engine.js";
import { kTestGatewayLimits } from "./test-limits.js";

export const CLIENT_TOKEN = "vxg_failover-client-token";
/** A second client token (name "other"), for tests of fairness between tokens. */
export const OTHER_CLIENT_TOKEN = "vxg_failover-other-client-token";
const AGENT_TOKEN = "vxg_failover-agent-token";
const silent = pino({ level: "silent" });

/** Which synthesize calls of an agent fail (before any audio), changeable while it runs. */
export interface FaultSwitch {
  /** `none`, every call, or every other call starting with the first. */
  mode: "none" | "all" | "every-other";
  /** Synthesize calls seen. */
  calls: number;
  /** Of those, calls failed on purpose. */
  failed: number;
}

/** One agent of the stack. */
export interface FailoverAgent {
  id: string;
  agent: Agent;
  engine: InProcessFakeEngine;
  host: EngineHost;
  faults: FaultSwitch;
  run: Promise<void>;
}

/** Options of {@link FailoverStack.addAgent}. */
export interface FailoverAgentOptions {
  /** Routing priority; lower is preferred. @default 0 */
  priority?: number;
  /** Slots. @default 2 */
  slots?: number;
  /** Fake engine settings. */
  engine?: InProcessFakeEngineOptions;
  /** Replaces the announced capabilities (e.g. to advertise clone features). */
  capabilities?: (described: Capabilities) => Capabilities;
  /** Replaces the synthesize handler (e.g. one that speaks clone prompts). */
  synthesize?: ServiceImpl<typeof GPUBackendService>["synthesize"];
}

/** A gateway plus agents; {@link close} shuts everything. */
export interface FailoverStack extends GatewayAddresses {
  gateway: Gateway;
  /** Starts an agent (it registers PENDING, then READY: wait with {@link waitReady}). */
  addAgent(id: string, options?: FailoverAgentOptions): FailoverAgent;
  /** Waits until the backend is READY in the registry. */
  waitReady(id: string): Promise<void>;
  /** A client of the public port (closed by {@link close}); Connect over HTTP/1.1 by default. */
  client(
    options?: Partial<Pick<VoxgateClientOptions, "token" | "protocol" | "httpVersion">>,
  ): VoxgateClient;
  /** Closes clients, agents, then the gateway. */
  close(): Promise<void>;
}

/** Polls `condition` every 5 ms until it holds; fails after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Starts a gateway with the given health settings. */
export async function startFailoverStack(
  health: GatewayOptions["health"] = {},
  more: Pick<GatewayOptions, "admission" | "usageFlushMs" | "storage"> & {
    /** Tokens besides "client", "other" and "agents". */
    tokens?: GatewayOptions["tokens"];
  } = {},
): Promise<FailoverStack> {
  const gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [
      { name: "client", sha256: hashToken(CLIENT_TOKEN), scopes: ["tts", "voices", "admin"] },
      { name: "other", sha256: hashToken(OTHER_CLIENT_TOKEN), scopes: ["tts", "voices"] },
      { name: "agents", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] },
      ...(more.tokens ?? []),
    ],
    limits: kTestGatewayLimits,
    health,
    ...(more.admission ? { admission: more.admission } : {}),
    ...(more.usageFlushMs ? { usageFlushMs: more.usageFlushMs } : {}),
    ...(more.storage ? { storage: more.storage } : {}),
    log: silent,
  });
  const addresses = await gateway.listen();
  const agents: FailoverAgent[] = [];
  const clients: VoxgateClient[] = [];

  return {
    ...addresses,
    gateway,
    addAgent(id, options = {}) {
      const engine = createInProcessFakeEngine(options.engine);
      const slots = options.slots ?? 2;
      const inner = createEngineHost({
        ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
        engines: [engine],
        slots,
      });
      const faults: FaultSwitch = { mode: "none", calls: 0, failed: 0 };
      const synthesize = options.synthesize ?? inner.handler.synthesize;
      const handler: ServiceImpl<typeof GPUBackendService> = {
        ...inner.handler,
        async *synthesize(request, context) {
          const n = faults.calls++;
          if (faults.mode === "all" || (faults.mode === "every-other" && n % 2 === 0)) {
            faults.failed++;
            throw new ConnectError(`injected failure on ${id}`, Code.Unavailable);
          }
          yield* synthesize(request, context);
        },
      };
      const host: EngineHost = {
        handler,
        get inFlight() {
          return inner.inFlight;
        },
        load: (): MessageInitShape<typeof LoadReportSchema> => inner.load(),
        drain: () => inner.drain(),
        idle: () => inner.idle(),
      };
      const described = describeEngines([engine], slots);
      const agent = new Agent({
        ...agentLinkOptionsFromSettings(settingDefaults(agentSettings)),
        gatewayAddress: `127.0.0.1:${addresses.agentPort}`,
        token: AGENT_TOKEN,
        agentId: id,
        version: "test",
        priority: options.priority ?? 0,
        host,
        capabilities: options.capabilities ? options.capabilities(described) : described,
        backoff: { initialDelayMs: 50, maxDelayMs: 200 },
        drainTimeoutMs: 5_000,
        log: silent,
      });
      const started: FailoverAgent = { id, agent, engine, host, faults, run: agent.run() };
      agents.push(started);
      return started;
    },
    waitReady(id) {
      return waitUntil(
        () => gateway.registry.get(id)?.state === BackendState.READY,
        `${id} to be READY`,
      );
    },
    client(options = {}) {
      const client = createVoxgateClient({
        baseUrl: addresses.publicUrl,
        token: CLIENT_TOKEN,
        protocol: "connect",
        httpVersion: "1.1",
        ...options,
      });
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients.splice(0)) client.close();
      await Promise.all(
        agents.splice(0).map(async ({ agent, run }) => {
          await agent.shutdown();
          await run;
        }),
      );
      await gateway.close(500);
    },
  };
}

/** The p-th percentile (0-100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}
