import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { backoffDelayMs } from "../agent/backoff.js";

/** Options of {@link superviseAgentProcess}. */
export interface AgentProcessOptions {
  /** Gateway agent port to dial, `host:port` or `https://host:port`. */
  gatewayAddress: string;
  /** Agent token, passed in the environment (never argv, which `ps` shows). */
  token: string;
  /** Agent id. */
  agentId: string;
  /** Environment for the child, besides the token. */
  env: Readonly<Record<string, string | undefined>>;
  /** Logger. */
  log: Logger;
  /** Time the agent gets to drain on stop before SIGKILL, in ms. @default 10_000 */
  stopTimeoutMs?: number;
}

/** A supervised local agent process. */
export interface AgentProcess {
  /** The current child, if running. */
  readonly child: ChildProcess | undefined;
  /** Stops supervising and drains the agent (SIGTERM), killing it after the timeout. Idempotent. */
  stop(): Promise<void>;
}

const CLI_ENTRY = fileURLToPath(new URL("../../bin/voxgate.mjs", import.meta.url));

/**
 * Runs `voxgate agent` as a child process and restarts it (with backoff) if it dies, so the local
 * stack keeps a working engine. The agent is a separate process exactly as on a GPU host: it dials
 * the gateway's agent port with its own token.
 */
export function superviseAgentProcess(options: AgentProcessOptions): AgentProcess {
  const log = options.log.child({ component: "agent-supervisor" });
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  let restartTimer: NodeJS.Timeout | undefined;

  const start = () => {
    const started = Date.now();
    const spawned = spawn(
      process.execPath,
      [CLI_ENTRY, "agent", "--gateway", options.gatewayAddress, "--id", options.agentId],
      {
        env: { ...options.env, VOXGATE_AGENT_TOKEN: options.token },
        stdio: ["ignore", "inherit", "inherit"],
      },
    );
    child = spawned;
    spawned.once("exit", (code, signal) => {
      if (child === spawned) child = undefined;
      if (stopping) return;
      // A long healthy run resets the backoff.
      if (Date.now() - started > 60_000) restarts = 0;
      const delayMs =
        500 +
        backoffDelayMs(restarts++, { initialDelayMs: 500, maxDelayMs: 10_000, multiplier: 2 });
      log.warn({ code, signal, delayMs }, "local agent exited; restarting");
      restartTimer = setTimeout(start, delayMs);
    });
  };
  start();

  let stopped: Promise<void> | undefined;
  return {
    get child() {
      return child;
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        clearTimeout(restartTimer);
        const running = child;
        if (!running || running.exitCode !== null || running.signalCode !== null) return;
        const exited = once(running, "exit");
        running.kill("SIGTERM");
        const timer = setTimeout(() => running.kill("SIGKILL"), options.stopTimeoutMs ?? 10_000);
        await exited;
        clearTimeout(timer);
      })();
      return stopped;
    },
  };
}
