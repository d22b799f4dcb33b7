/**
 * The benchmark suite (`npm run bench`): runs each benchmark in its own process, one after the
 * other, so none measures another's leftovers. Each prints its tables and one JSON line.
 *
 *   npm run bench                   # all: relay, held-streams, first-audio, restart, rest-vs-connect,
 *                                   # prompt-delivery, audio-analysis, audio-codecs, word-timings,
 *                                   # job-queue, tls-first-byte, scale-out, liveness-load
 *   npm run bench -- --quick        # relay and held-streams only, under 2 minutes on 2 idle cores
 *   npm run bench -- --only relay   # one benchmark; other flags are passed on (--reps N)
 *   npm run bench -- --only scale-out --full   # the issue-sized figures of those that have them
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values, tokens } = parseArgs({
  options: {
    quick: { type: "boolean" },
    only: { type: "string" },
    reps: { type: "string" },
    full: { type: "boolean" },
  },
  tokens: true,
});
/**
 * Benchmarks in suite order; `quick` says whether `--quick` runs it, `forward` whether it takes
 * the suite's flags (`--quick`, `--reps`), `full` whether it takes `--full` (its issue-sized
 * figures); the others run with their own defaults.
 */
const BENCHMARKS = [
  { name: "relay", quick: true, forward: true, full: false },
  { name: "held-streams", quick: true, forward: true, full: false },
  // espeak-ng end to end: reachable alone (npm run bench:first-audio) and in the full suite.
  { name: "first-audio", quick: false, forward: true, full: false },
  { name: "restart", quick: false, forward: true, full: false },
  { name: "rest-vs-connect", quick: false, forward: true, full: false },
  { name: "prompt-delivery", quick: false, forward: false, full: false },
  { name: "audio-analysis", quick: false, forward: false, full: false },
  { name: "audio-codecs", quick: false, forward: false, full: false },
  { name: "word-timings", quick: false, forward: false, full: false },
  { name: "job-queue", quick: false, forward: false, full: false },
  { name: "tls-first-byte", quick: false, forward: true, full: false },
  { name: "scale-out", quick: false, forward: true, full: true },
  { name: "liveness-load", quick: false, forward: true, full: false },
] as const;

const selected = BENCHMARKS.filter((b) =>
  values.only ? b.name === values.only : !values.quick || b.quick,
);
if (selected.length === 0) {
  console.error(
    `no benchmark named ${values.only}; known: ${BENCHMARKS.map((b) => b.name).join(", ")}`,
  );
  process.exit(2);
}
// `--full` goes only to the benchmarks that know it (the others would stop at an unknown option).
const passOn = tokens
  .filter((t) => t.kind === "option" && t.name !== "only" && t.name !== "full")
  .flatMap((t) =>
    t.kind === "option" ? [t.rawName, ...(t.value !== undefined ? [t.value] : [])] : [],
  );

const began = performance.now();
let failed = 0;
for (const bench of selected) {
  const script = fileURLToPath(new URL(`./${bench.name}.ts`, import.meta.url));
  const args = [...(bench.forward ? passOn : []), ...(bench.full && values.full ? ["--full"] : [])];
  console.log(`\n=== ${bench.name} ${args.join(" ")}`.trimEnd());
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    stdio: "inherit",
  });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) {
    failed++;
    console.error(`${bench.name} failed (exit ${code})`);
  }
}
console.log(
  `\nbench suite: ${selected.length - failed}/${selected.length} ran in ${Math.round((performance.now() - began) / 1000)} s`,
);
process.exit(failed > 0 ? 1 : 0);
