/**
 * Restart benchmark: how soon a gateway's agents are back after a zero-cut restart (issue 12:
 * "the restarted gateway has its agents back ≤ 3 s"). Real processes on loopback: a gateway with
 * two echo agents (default reconnect settings) gets SIGTERM and a replacement is started at once
 * on the same ports, as README "Zero-cut restarts" says to do. Times come from the processes' log
 * lines (one clock, milliseconds since the SIGTERM):
 *
 * - `told to go`: the old gateway sent GatewayLeaving (after its 1 s quiet spell);
 * - `port open`: the replacement's agent port listens;
 * - `agents back`: both agents are READY on the replacement.
 *
 *   npm run bench:restart -- [--reps N] [--quick] [--built]
 *
 * `--built` runs `npm run build` first and alternates runs from the sources (tsx) and from dist/.
 * The 1-minute load average is shown beside every run (the machine is shared). Prints a table and
 * one JSON line of figures.
 */
import { execFileSync } from "node:child_process";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { generateToken } from "../services/auth/token-codec.js";
import {
  type LogLine,
  spawnVoxgate,
  type VoxgateProcess,
} from "../test/helpers/voxgate-process.js";

const { values } = parseArgs({
  options: { reps: { type: "string" }, quick: { type: "boolean" }, built: { type: "boolean" } },
});
const reps = Number(values.reps ?? (values.quick ? 2 : 5));
type Mode = "sources" | "built";
const modes: Mode[] = values.built ? ["sources", "built"] : ["sources"];
const AGENTS = ["restart-bench-a", "restart-bench-b"];

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const agentReady = (id: string) => (l: LogLine) => l.msg === "agent ready" && l.agent === id;

/** `voxgate gateway` on the given ports (0 = any), resolving once it is ready. */
async function gateway(
  mode: Mode,
  tokens: { client: string; agent: string },
  ports: { public: number; agent: number },
) {
  const proc = spawnVoxgate(["gateway"], {
    VOXGATE_PORT: String(ports.public),
    VOXGATE_AGENT_PORT: String(ports.agent),
    VOXGATE_TOKEN: tokens.client,
    VOXGATE_AGENT_TOKEN: tokens.agent,
    VOXGATE_RUN_SOURCES: mode === "sources" ? "1" : "0",
  });
  return proc;
}

/** One restart; resolves with its times in ms since the SIGTERM. */
async function restartOnce(mode: Mode) {
  const loadAvg1m = loadavg()[0] ?? 0;
  const tokens = { client: generateToken(), agent: generateToken() };
  const processes: VoxgateProcess[] = [];
  try {
    const old = await gateway(mode, tokens, { public: 0, agent: 0 });
    processes.push(old);
    const ready = await old.waitForLog((l) => l.msg === "gateway ready", 120_000);
    const ports = { public: Number(ready.publicPort), agent: Number(ready.agentPort) };
    for (const id of AGENTS) {
      const agent = spawnVoxgate(["agent", "--gateway", `127.0.0.1:${ports.agent}`, "--id", id], {
        VOXGATE_AGENT_TOKEN: tokens.agent,
        VOXGATE_AGENT_ENGINE: "echo",
        VOXGATE_RUN_SOURCES: mode === "sources" ? "1" : "0",
      });
      processes.push(agent);
    }
    await Promise.all(AGENTS.map((id) => old.waitForLog(agentReady(id), 120_000)));

    const termAt = Date.now();
    old.child.kill("SIGTERM");
    // The old gateway frees both ports as its drain starts; the replacement starts right away.
    await old.waitForLog((l) => l.msg === "draining", 60_000);
    const replacement = await gateway(mode, tokens, ports);
    processes.push(replacement);
    const back = await Promise.all(
      AGENTS.map((id) => replacement.waitForLog(agentReady(id), 120_000)),
    );
    const told = await old.waitForLog(
      (l) => l.msg === "agent port draining: agents told to go",
      60_000,
    );
    const portOpen = await replacement.waitForLog((l) => l.msg === "agent port listening", 1000);
    const since = (line: LogLine) => Number(line.time) - termAt;
    const agentsBackMs = Math.max(...back.map(since));
    return {
      loadAvg1m,
      toldMs: since(told),
      portOpenMs: since(portOpen),
      agentsBackMs,
      afterPortMs: agentsBackMs - since(portOpen),
    };
  } finally {
    await Promise.all(processes.map((p) => p.stop("SIGKILL").catch(() => {})));
  }
}

if (values.built) {
  console.log("building dist/ (npm run build) ...");
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL("../scripts/build.mjs", import.meta.url))],
    { stdio: "inherit" },
  );
}
type Run = Awaited<ReturnType<typeof restartOnce>>;
const runs = new Map<Mode, Run[]>(modes.map((mode) => [mode, []]));
// The modes alternate, so both see the same machine state on a shared machine.
for (let i = 0; i < reps; i++) {
  for (const mode of modes) runs.get(mode)?.push(await restartOnce(mode));
}

const fmt = (ms: number) => `${Math.round(ms)} ms`.padStart(9);
console.log(`\nvoxgate restart benchmark — node ${process.version}, ${new Date().toISOString()}`);
for (const [mode, list] of runs) {
  console.log(
    `\nSIGTERM → … (replacement started at once, ${AGENTS.length} echo agents), from ${mode === "built" ? "dist/" : "sources (tsx)"}:`,
  );
  console.log("  run   told to go   port open   agents back   back after port   load avg (1 min)");
  for (const [i, r] of list.entries()) {
    console.log(
      `  ${String(i + 1).padEnd(5)}${fmt(r.toldMs)}   ${fmt(r.portOpenMs)}   ${fmt(r.agentsBackMs)}     ${fmt(r.afterPortMs)}          ${r.loadAvg1m.toFixed(1)}`,
    );
  }
}
const figures = {
  bench: "restart",
  node: process.version,
  ...Object.fromEntries(
    [...runs].map(([mode, list]) => [
      mode,
      {
        agentsBackMs: {
          median: percentile(
            list.map((r) => r.agentsBackMs),
            50,
          ),
          max: Math.max(...list.map((r) => r.agentsBackMs)),
        },
        portOpenMs: percentile(
          list.map((r) => r.portOpenMs),
          50,
        ),
        agentsBackAfterPortMs: percentile(
          list.map((r) => r.afterPortMs),
          50,
        ),
        loadAvg1m: list.map((r) => Number(r.loadAvg1m.toFixed(1))),
      },
    ]),
  ),
  targets: { agentsBackMs: 3000 },
};
console.log(`\n${JSON.stringify(figures)}`);
