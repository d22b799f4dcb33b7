/**
 * Spawns real `voxgate` processes (bin/voxgate.mjs) for end-to-end tests and reads their JSON log
 * lines, so tests can wait for "gateway ready" or "agent connected" instead of sleeping.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Path of the CLI entry point. */
export const CLI_ENTRY = fileURLToPath(new URL("../../bin/voxgate.mjs", import.meta.url));

/**
 * Default wait for a log line, and for a gateway or agent process to be ready, in ms. Generous on
 * purpose: on a loaded 2-core CI machine a fresh `voxgate agent` (tsx loading its sources) once
 * printed nothing for 30 s. A waiter that times out still fails the test; tests that measure a
 * time print it as a figure instead of racing this.
 */
export const PROCESS_START_TIMEOUT_MS = 90_000;

/** One parsed log line. */
export type LogLine = Record<string, unknown> & { msg?: string; time?: number };

/** A spawned voxgate process with its log lines. */
export interface VoxgateProcess {
  /** The child process. */
  readonly child: ChildProcess;
  /** Every JSON log line so far. */
  readonly logs: LogLine[];
  /** Every line of standard output so far, as written (for strict checks of the JSON). */
  readonly rawLines: string[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the first log line (past or future) matching `predicate`. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends `signal` and resolves with the exit code (or signal name) once the process exits. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
  /** Resolves with the exit code (or signal name) when the process exits. */
  exited(): Promise<number | string>;
}

/**
 * Spawns `voxgate <args>` with `env` added to a clean copy of the environment. A gateway (`gateway`
 * or `start`) without `VOXGATE_DATA_DIR` gets its own temporary data dir, deleted when it exits,
 * so no test shares stores with another or leaves them in the working directory.
 */
export function spawnVoxgate(args: string[], env: Record<string, string> = {}): VoxgateProcess {
  const runsGateway = args[0] === "gateway" || args[0] === "start";
  const dataDir =
    runsGateway && !env.VOXGATE_DATA_DIR
      ? mkdtempSync(join(tmpdir(), "voxgate-e2e-data-"))
      : undefined;
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], {
    env: {
      ...process.env,
      VOXGATE_LOG_LEVEL: "info",
      ...(dataDir ? { VOXGATE_DATA_DIR: dataDir } : {}),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (dataDir) {
    child.once("exit", () => rmSync(dataDir, { recursive: true, force: true }));
  }
  const logs: LogLine[] = [];
  const rawLines: string[] = [];
  const waiters = new Set<{ predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let stderr = "";
  let partial = "";
  child.stdout?.setEncoding("utf8").on("data", (text: string) => {
    partial += text;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const raw of lines) {
      rawLines.push(raw);
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        continue;
      }
      logs.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  const exit = once(child, "exit").then(([code, signal]) => (code ?? signal) as number | string);

  return {
    child,
    logs,
    rawLines,
    stderr: () => stderr,
    waitForLog(predicate, timeoutMs = PROCESS_START_TIMEOUT_MS) {
      const seen = logs.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = { predicate, resolve };
        waiters.add(waiter);
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(
              `no matching log line within ${timeoutMs} ms; stderr:\n${stderr}\nlogs:\n${logs.map((l) => l.msg).join("\n")}`,
            ),
          );
        }, timeoutMs);
        void exit.then((code) => {
          if (!waiters.has(waiter)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          reject(new Error(`process exited (${code}) before the log line; stderr:\n${stderr}`));
        });
        const originalResolve = waiter.resolve;
        waiter.resolve = (line) => {
          clearTimeout(timer);
          originalResolve(line);
        };
      });
    },
    async stop(signal = "SIGTERM", timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exit;
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exit;
      } finally {
        clearTimeout(timer);
      }
    },
    exited: () => exit,
  };
}

/** Polls `probe` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 10_000, intervalMs = 20, what = "condition" } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`,
  );
}
