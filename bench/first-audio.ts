/**
 * First-audio benchmark: how long a new user waits after `npm start`, and how soon the first audio
 * of a 10-sentence text arrives on a warm system. Real processes (`voxgate start`: gateway plus a
 * spawned CPU agent), real espeak-ng, loopback only. Each start gets a new data directory (a
 * first start: the embedded database is created in the background).
 *
 *   npm run bench:first-audio -- [--reps N] [--quick] [--built [--skip-build]]
 *
 * Cold starts run the TypeScript sources through tsx (VOXGATE_RUN_SOURCES=1); `--built` runs
 * `npm run build` first and measures cold starts from dist/ too, so both figures come from one
 * run (`--skip-build`: dist/ is current already). The 1-minute load average is shown beside every start (the machine is shared).
 * Prints a table and one JSON line of figures.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createVoxgateClient } from "../clients/voxgate-client.js";
import { generateToken } from "../services/auth/token-codec.js";
import { spawnVoxgate } from "../test/helpers/voxgate-process.js";
import { cpuTimeMs } from "./support/proc-stats.js";

const { values } = parseArgs({
  options: {
    reps: { type: "string" },
    quick: { type: "boolean" },
    built: { type: "boolean" },
    "skip-build": { type: "boolean" },
  },
});
const coldReps = Number(values.reps ?? (values.quick ? 2 : 5));
const warmReps = values.quick ? 10 : 30;
const TEN_SENTENCES = Array.from(
  { length: 10 },
  (_, i) => `This is sentence number ${i + 1} of a short story about a gateway.`,
).join(" ");

/** How `voxgate start` runs: the sources through tsx, or the compiled dist/. */
type Mode = "sources" | "built";

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * CPU time (user + system, every thread) the `voxgate start` process and its local agent used so
 * far, in ms: unlike wall times it hardly depends on what else the machine runs.
 */
function stackCpuMs(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
    .split(" ")
    .filter(Boolean)
    .map(Number);
  return [pid, ...children].reduce((sum, p) => sum + cpuTimeMs(p), 0);
}

/** Spawns a fresh stack and measures spawn → ready, spawn → agent connected, spawn → first audio. */
async function coldStart(token: string, mode: Mode) {
  const loadAvg1m = loadavg()[0] ?? 0;
  const began = performance.now();
  const stack = spawnVoxgate(["start"], {
    VOXGATE_PORT: "0",
    VOXGATE_AGENT_PORT: "0",
    VOXGATE_TOKEN: token,
    VOXGATE_LOG_LEVEL: "info",
    VOXGATE_RUN_SOURCES: mode === "sources" ? "1" : "0",
  });
  try {
    const url = String(
      (await stack.waitForLog((l) => l.msg === "voxgate ready", 120_000)).publicUrl,
    );
    const readyMs = performance.now() - began;
    await stack.waitForLog((l) => l.msg === "agent ready", 60_000);
    const agentMs = performance.now() - began;
    const client = createVoxgateClient({ baseUrl: url, token });
    let firstAudioMs = 0;
    let cpuMs = 0;
    try {
      for await (const _chunk of client.tts.streamSynthesize({ text: "Hello from voxgate" })) {
        firstAudioMs = performance.now() - began;
        cpuMs = stackCpuMs(stack.child.pid ?? 0);
        break;
      }
    } finally {
      client.close();
    }
    return { stack, url, readyMs, agentMs, firstAudioMs, cpuMs, loadAvg1m };
  } catch (err) {
    await stack.stop("SIGKILL");
    throw err;
  }
}

const modes: Mode[] = values.built ? ["sources", "built"] : ["sources"];
if (values.built && !values["skip-build"]) {
  console.log("building dist/ (npm run build) ...");
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL("../scripts/build.mjs", import.meta.url))],
    {
      stdio: "inherit",
    },
  );
}
const token = generateToken();
type ColdRun = {
  readyMs: number;
  agentMs: number;
  firstAudioMs: number;
  cpuMs: number;
  loadAvg1m: number;
};
const cold = new Map<Mode, ColdRun[]>(modes.map((mode) => [mode, []]));
// The modes alternate, so both see the same machine state on a shared machine.
for (let i = 0; i < coldReps; i++) {
  for (const mode of modes) {
    const run = await coldStart(token, mode);
    cold.get(mode)?.push(run);
    await run.stack.stop("SIGTERM");
  }
}

// Warm: one stack, many 10-sentence streams over gRPC and Connect.
const warm = await coldStart(token, modes[modes.length - 1] ?? "sources");
const rows: Array<[string, number[], number[]]> = [];
for (const protocol of ["connect", "grpc"] as const) {
  const client = createVoxgateClient({ baseUrl: warm.url, token, protocol });
  const first: number[] = [];
  const total: number[] = [];
  try {
    for (let i = 0; i < warmReps + 2; i++) {
      const sent = performance.now();
      let firstMs = 0;
      for await (const _chunk of client.tts.streamSynthesize({ text: TEN_SENTENCES })) {
        if (firstMs === 0) firstMs = performance.now() - sent;
      }
      if (i >= 2) {
        // The first two calls warm the JIT on both sides; they are not counted.
        first.push(firstMs);
        total.push(performance.now() - sent);
      }
    }
  } finally {
    client.close();
  }
  rows.push([protocol, first, total]);
}
await warm.stack.stop("SIGTERM");

const fmt = (ms: number) => `${Math.round(ms)} ms`.padStart(9);
console.log(
  `\nvoxgate first-audio benchmark — node ${process.version}, ${new Date().toISOString()}`,
);
for (const [mode, runs] of cold) {
  console.log(
    `\ncold start (npm start → …) from ${mode === "built" ? "dist/" : "sources (tsx)"}, per run:`,
  );
  console.log(
    "  run   gateway ready   agent ready   first audio byte   CPU until then   load avg (1 min)",
  );
  for (const [i, c] of runs.entries()) {
    console.log(
      `  ${String(i + 1).padEnd(5)}${fmt(c.readyMs)}       ${fmt(c.agentMs)}     ${fmt(c.firstAudioMs)}        ${fmt(c.cpuMs)}        ${c.loadAvg1m.toFixed(1)}`,
    );
  }
}
console.log(`\nwarm, 10-sentence text (${warmReps} runs each):`);
console.log("  protocol   first chunk p50   p99      whole text p50   p99");
for (const [protocol, first, total] of rows) {
  console.log(
    `  ${protocol.padEnd(10)}${fmt(percentile(first, 50))}   ${fmt(percentile(first, 99))}   ${fmt(percentile(total, 50))}   ${fmt(percentile(total, 99))}`,
  );
}
const figures = {
  bench: "first-audio",
  node: process.version,
  ...Object.fromEntries(
    [...cold].map(([mode, runs]) => [
      mode === "built" ? "built" : "sources",
      {
        coldStartFirstAudioMs: {
          median: percentile(
            runs.map((c) => c.firstAudioMs),
            50,
          ),
          min: Math.min(...runs.map((c) => c.firstAudioMs)),
          max: Math.max(...runs.map((c) => c.firstAudioMs)),
        },
        coldStartAgentReadyMs: percentile(
          runs.map((c) => c.agentMs),
          50,
        ),
        cpuUntilFirstAudioMs: percentile(
          runs.map((c) => c.cpuMs),
          50,
        ),
        loadAvg1m: runs.map((c) => Number(c.loadAvg1m.toFixed(1))),
      },
    ]),
  ),
  tenSentences: Object.fromEntries(
    rows.map(([p, first, total]) => [
      p,
      {
        firstChunkP50Ms: percentile(first, 50),
        firstChunkP99Ms: percentile(first, 99),
        totalP50Ms: percentile(total, 50),
      },
    ]),
  ),
};
console.log(`\n${JSON.stringify(figures)}`);
