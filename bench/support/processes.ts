/**
 * Spawns the benchmark's separate processes (gateway, agents, baseline servers) and waits for the
 * JSON log line that says each is ready. Output is scanned, never stored: a gateway logs one line
 * per call, and a benchmark makes hundreds of thousands of calls.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

/** Path of the voxgate CLI entry point. */
export const VOXGATE_CLI = fileURLToPath(new URL("../../bin/voxgate.mjs", import.meta.url));

/** A spawned benchmark process. */
export interface BenchProcess {
  /** The child. */
  readonly child: ChildProcess;
  /** Its pid (for /proc readings). */
  readonly pid: number;
  /** Resolves with the first JSON stdout line whose `msg` is `msg` (among the last 64 or later). */
  waitFor(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** The last stdout lines that matched no waiter (at most 64), for diagnosing failures. */
  recentLines(): string[];
  /** Sends SIGTERM, then SIGKILL after `timeoutMs`; resolves when the process is gone. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Spawns `node <args>` with `env` added to this process's environment. */
export function spawnNode(args: string[], env: Record<string, string> = {}): BenchProcess {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const waiters = new Map<string, (line: Record<string, unknown>) => void>();
  // The last lines, so a waiter registered after its line was printed still finds it.
  const recent: string[] = [];
  let partial = "";
  let stderr = "";
  const match = (raw: string) => {
    for (const [msg, resolve] of waiters) {
      if (!raw.includes(`"msg":"${msg}"`)) continue;
      waiters.delete(msg);
      resolve(JSON.parse(raw) as Record<string, unknown>);
      return true;
    }
    return false;
  };
  child.stdout?.setEncoding("utf8").on("data", (text: string) => {
    partial += text;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const raw of lines) {
      if (waiters.size > 0 && match(raw)) continue;
      // Per-call info lines would push out the warnings worth showing.
      if (raw.includes('"level":30') && recent.length > 32) continue;
      recent.push(raw);
      if (recent.length > 64) recent.shift();
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });
  const exited = once(child, "exit");
  return {
    child,
    pid: child.pid ?? 0,
    waitFor(msg, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(msg);
          reject(new Error(`no "${msg}" from ${args.join(" ")} within ${timeoutMs} ms\n${stderr}`));
        }, timeoutMs);
        void exited.then(() => {
          if (!waiters.has(msg)) return;
          waiters.delete(msg);
          clearTimeout(timer);
          reject(new Error(`${args.join(" ")} exited before "${msg}"\n${stderr}`));
        });
        waiters.set(msg, (line) => {
          clearTimeout(timer);
          resolve(line);
        });
        const seen = recent.findIndex((raw) => raw.includes(`"msg":"${msg}"`));
        if (seen >= 0) match(recent.splice(seen, 1)[0] as string);
      });
    },
    recentLines: () => [...recent],
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Spawns a bench role script (`bench/roles/<name>.ts`) under tsx. */
export function spawnRole(name: string, env: Record<string, string> = {}): BenchProcess {
  const script = fileURLToPath(new URL(`../roles/${name}.ts`, import.meta.url));
  return spawnNode(["--import", "tsx", script], env);
}

/**
 * Gateway settings of the relay benchmarks. One agent connection carries the control stream plus
 * up to 256 calls. On a saturated 2-core host the default 1 s keepalive and probe deadlines drop a
 * busy agent at concurrency 256 (measured); the benchmarks measure the relay, not that cut-off.
 */
export const BENCH_GATEWAY_ENV: Readonly<Record<string, string>> = {
  VOXGATE_AGENT_MAX_STREAMS: "1024",
  VOXGATE_AGENT_KEEPALIVE_TIMEOUT_MS: "5000",
  VOXGATE_PROBE_TIMEOUT_MS: "5000",
  VOXGATE_AGENT_HELLO_TIMEOUT_MS: "30000",
  VOXGATE_HEARTBEAT_MISS_LIMIT: "10",
};

/** Options of {@link startGateway}. */
export interface GatewayStartOptions {
  /** Client token accepted with every scope. */
  clientToken: string;
  /** Agent token. */
  agentToken: string;
  /** More gateway environment (limits). */
  env?: Record<string, string>;
  /** Extra node flags (e.g. `--cpu-prof`). */
  nodeFlags?: string[];
}

/** A running gateway process with its addresses. */
export interface GatewayProcess extends BenchProcess {
  /** Public URL, e.g. `http://127.0.0.1:40123`. */
  readonly publicUrl: string;
  /** Agent port address, `127.0.0.1:port`. */
  readonly agentAddress: string;
}

/** Starts `voxgate gateway` on free loopback ports at the default log level (info). */
export async function startGateway(options: GatewayStartOptions): Promise<GatewayProcess> {
  const gateway = spawnNode([...(options.nodeFlags ?? []), VOXGATE_CLI, "gateway"], {
    VOXGATE_PORT: "0",
    VOXGATE_AGENT_PORT: "0",
    VOXGATE_TOKEN: options.clientToken,
    VOXGATE_AGENT_TOKEN: options.agentToken,
    VOXGATE_LOG_LEVEL: "info",
    ...options.env,
  });
  try {
    const ready = await gateway.waitFor("gateway ready", 180_000);
    return {
      ...gateway,
      publicUrl: String(ready.publicUrl),
      agentAddress: `127.0.0.1:${String(ready.agentPort)}`,
    };
  } catch (err) {
    await gateway.stop();
    throw err;
  }
}

/** Starts `voxgate agent --engine echo` and resolves once it is connected to the gateway. */
export async function startEchoAgent(
  gateway: GatewayProcess,
  agentToken: string,
  id: string,
  slots: number,
): Promise<BenchProcess> {
  const agent = spawnNode([VOXGATE_CLI, "agent"], {
    VOXGATE_GATEWAY: gateway.agentAddress,
    VOXGATE_AGENT_TOKEN: agentToken,
    VOXGATE_AGENT_ID: id,
    VOXGATE_AGENT_SLOTS: String(slots),
    VOXGATE_AGENT_ENGINE: "echo",
    VOXGATE_LOG_LEVEL: "info",
  });
  try {
    await agent.waitFor("connected to gateway", 180_000);
    return agent;
  } catch (err) {
    await agent.stop();
    throw err;
  }
}
