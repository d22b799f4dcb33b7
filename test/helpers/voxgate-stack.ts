/**
 * Starts real gateway and agent processes on 127.0.0.1 with generated tokens, for end-to-end tests.
 */
import { generateToken } from "../../services/auth/token-codec.js";
import { PROCESS_START_TIMEOUT_MS, spawnVoxgate, type VoxgateProcess } from "./voxgate-process.js";

/** A running gateway process and what a test needs to reach it. */
export interface GatewayProcess {
  /** The process. */
  proc: VoxgateProcess;
  /** Public API base URL. */
  url: string;
  /** Public port. */
  publicPort: number;
  /** Agent port. */
  agentPort: number;
  /** Client token (all client scopes). */
  clientToken: string;
  /** Agent token. */
  agentToken: string;
}

/** Options of {@link startGatewayProcess}. */
export interface GatewayProcessOptions {
  /** Fixed ports (to restart a gateway where agents expect it); 0 = any free. */
  publicPort?: number;
  agentPort?: number;
  /** Tokens to reuse across restarts. */
  clientToken?: string;
  agentToken?: string;
  /** Extra environment, e.g. limits. */
  env?: Record<string, string>;
  /** Longest wait for "gateway ready", in ms. @default PROCESS_START_TIMEOUT_MS */
  readyTimeoutMs?: number;
}

/** Starts `voxgate gateway` and waits until it listens. */
export async function startGatewayProcess(
  options: GatewayProcessOptions = {},
): Promise<GatewayProcess> {
  const clientToken = options.clientToken ?? generateToken();
  const agentToken = options.agentToken ?? generateToken();
  const proc = spawnVoxgate(["gateway"], {
    VOXGATE_PORT: String(options.publicPort ?? 0),
    VOXGATE_AGENT_PORT: String(options.agentPort ?? 0),
    VOXGATE_TOKEN: clientToken,
    VOXGATE_AGENT_TOKEN: agentToken,
    ...options.env,
  });
  let ready: Awaited<ReturnType<VoxgateProcess["waitForLog"]>>;
  try {
    ready = await proc.waitForLog(
      (l) => l.msg === "gateway ready",
      options.readyTimeoutMs ?? PROCESS_START_TIMEOUT_MS,
    );
  } catch (err) {
    // Nobody else holds this process yet: a gateway that never got ready must not outlive the test.
    await proc.stop("SIGKILL").catch(() => {});
    throw err;
  }
  return {
    proc,
    url: String(ready.publicUrl),
    publicPort: Number(ready.publicPort),
    agentPort: Number(ready.agentPort),
    clientToken,
    agentToken,
  };
}

/**
 * Starts `voxgate agent` against `gateway`. `connected` resolves once the agent was welcomed and,
 * when the gateway process is given, once the gateway routes to it (its "agent ready" line: a
 * backend stays PENDING until its first heartbeat).
 */
export function startAgentProcess(
  gateway: Pick<GatewayProcess, "agentPort" | "agentToken"> & { proc?: VoxgateProcess },
  id: string,
  env: Record<string, string> = {},
  /** Longest wait for each of "connected" and "agent ready", in ms. */
  timeoutMs = PROCESS_START_TIMEOUT_MS,
): { proc: VoxgateProcess; connected: Promise<unknown> } {
  const proc = spawnVoxgate(["agent", "--gateway", `127.0.0.1:${gateway.agentPort}`, "--id", id], {
    VOXGATE_AGENT_TOKEN: gateway.agentToken,
    ...env,
  });
  const welcomed = proc.waitForLog((l) => l.msg === "connected to gateway", timeoutMs);
  const gatewayProc = gateway.proc;
  const connected = gatewayProc
    ? welcomed.then(() =>
        gatewayProc.waitForLog((l) => l.msg === "agent ready" && l.agent === id, timeoutMs),
      )
    : welcomed;
  // Tests that expect the agent to be refused never await this; keep its rejection observed.
  connected.catch(() => {});
  return { proc, connected };
}
