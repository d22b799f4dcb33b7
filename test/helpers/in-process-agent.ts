/**
 * Test helper: a real voxgate {@link Agent} in the test's own process, dialling a gateway's agent
 * port with the agent settings' defaults (short reconnect waits), and a wait until the gateway
 * routes to it. In-process tests use it instead of building the agent by hand each time.
 */
import { pino } from "pino";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { Agent, agentLinkOptionsFromSettings } from "../../services/agent/agent.js";
import { agentSettings } from "../../services/agent/agent-settings.js";
import { settingDefaults } from "../../services/config/settings.js";
import {
  type EngineHost,
  engineHostLimitsFromSettings,
} from "../../services/engine-host/engine-host-handler.js";
import { createEngineHost, describeEngines } from "../../services/engine-host/index.js";
import type { TtsEngine } from "../../services/engines/tts-engine.js";

/** Options of {@link startInProcessAgent}. */
export interface InProcessAgentOptions {
  /** The gateway's agent port on 127.0.0.1. */
  agentPort: number;
  /** An agent token the gateway accepts. */
  token: string;
  /** Agent (backend) id. */
  id: string;
  /** Engines the agent serves. */
  engines: TtsEngine[];
  /** Calls it takes at once. */
  slots: number;
  /** An engine host of the test's own (e.g. one that injects faults); built from `engines` otherwise. */
  host?: EngineHost;
  /** Longest wait for running calls on shutdown, in ms. @default 2000 */
  drainTimeoutMs?: number;
}

/** A started agent and its run loop (settles once `agent.shutdown()` finished). */
export interface InProcessAgent {
  agent: Agent;
  run: Promise<void>;
}

/** Starts an agent in this process; see {@link waitForBackendReady} to wait until it serves. */
export function startInProcessAgent(options: InProcessAgentOptions): InProcessAgent {
  const defaults = settingDefaults(agentSettings);
  const agent = new Agent({
    ...agentLinkOptionsFromSettings(defaults),
    gatewayAddress: `127.0.0.1:${options.agentPort}`,
    token: options.token,
    agentId: options.id,
    version: "test",
    host:
      options.host ??
      createEngineHost({
        ...engineHostLimitsFromSettings(defaults),
        engines: options.engines,
        slots: options.slots,
      }),
    capabilities: describeEngines(options.engines, options.slots),
    backoff: { initialDelayMs: 50, maxDelayMs: 200 },
    drainTimeoutMs: options.drainTimeoutMs ?? 2_000,
    log: pino({ level: "silent" }),
  });
  return { agent, run: agent.run() };
}

/**
 * Waits until the gateway's registry has backend `id` READY. Generous by default: registering
 * takes well under a second on a quiet machine, tens of seconds on a loaded one.
 */
export async function waitForBackendReady(
  registry: { get(id: string): { state: BackendState } | undefined },
  id: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (registry.get(id)?.state !== BackendState.READY) {
    if (performance.now() > deadline) {
      throw new Error(`backend ${id} did not become READY within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
