/**
 * Held-streams benchmark: 1,000 concurrent audio streams held open through one gateway across 10
 * agents, each a separate process on 127.0.0.1 (echo engine: one chunk at once, then a pause of
 * `echo.hold_ms`, then the rest). Measures the gateway's resident memory while every stream is
 * open, its peak, and the errors (targets: zero errors, RSS ≤ 300 MB).
 *
 *   node --import tsx bench/held-streams.ts [--quick] [--reps N] [--streams N]
 *
 * Prints a table and one JSON line.
 */
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { BackendAdminService, BackendState } from "../gen/voxgate/v1/backend_admin_pb.js";
import { generateToken } from "../services/auth/token-codec.js";
import { createWideTransport } from "./support/h2-client.js";
import { type BenchPath, gatewayPath } from "./support/paths.js";
import { memoryBytes } from "./support/proc-stats.js";
import {
  BENCH_GATEWAY_ENV,
  type BenchProcess,
  startEchoAgent,
  startGateway,
} from "./support/processes.js";
import { printTable, showSpread, spread } from "./support/stats.js";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean" },
    reps: { type: "string" },
    streams: { type: "string" },
  },
});
const quick = values.quick ?? false;
const reps = Math.max(3, Number(values.reps ?? 3));
const STREAMS = Number(values.streams ?? 1000);
const AGENTS = 10;
const SLOTS_PER_AGENT = Math.min(256, Math.ceil(STREAMS / AGENTS));
// The public port allows 256 streams per connection: clients spread over connections, as many
// callers would.
const CONNECTIONS = Math.ceil(STREAMS / 200);
// Streams open at most OPENING at a time (callers arrive spread out, not in one millisecond), and
// each asks to be held until the same moment, HOLD_BUDGET_MS after the first, so all overlap if
// opening them all takes less than that budget (and at least MIN_HOLD_MS each).
const OPENING = 64;
const HOLD_BUDGET_MS = quick ? 10_000 : 40_000;
const MIN_HOLD_MS = 2000;
const ANSWER_BYTES = 64 * 1024;
const MB = 1_000_000;
const RSS_TARGET_BYTES = 300 * MB;

interface HeldRun {
  /** Gateway RSS when the last stream got its first byte, in bytes (0: never all open). */
  rssAllOpenBytes: number;
  /** Highest gateway RSS sampled (every 100 ms) during the repetition, in bytes. */
  peakRssBytes: number;
  /** Most streams open (first byte in, last byte not yet) at one time. */
  maxConcurrentOpen: number;
  /** Time until all streams were open, in ms. */
  allOpenMs: number;
  /** Streams that failed. */
  errors: number;
}

const clientToken = generateToken();
const agentToken = generateToken();
const started: BenchProcess[] = [];
const paths: BenchPath[] = [];

try {
  const gateway = await startGateway({
    clientToken,
    agentToken,
    env: BENCH_GATEWAY_ENV,
  });
  started.push(gateway);
  // Two at a time: ten processes loading at once on two cores only slow each other down.
  for (let i = 0; i < AGENTS; i += 2) {
    const ids = [i + 1, i + 2].filter((n) => n <= AGENTS);
    started.push(
      ...(await Promise.all(
        ids.map((n) => startEchoAgent(gateway, agentToken, `echo-${n}`, SLOTS_PER_AGENT)),
      )),
    );
  }
  const { transport, close } = createWideTransport(gateway.publicUrl, "grpc", clientToken);
  try {
    const admin = createClient(BackendAdminService, transport);
    const deadline = Date.now() + 60_000;
    let ready = 0;
    while (ready < AGENTS) {
      if (Date.now() > deadline) throw new Error(`only ${ready} of ${AGENTS} agents became ready`);
      const { backends } = await admin.listBackends({});
      ready = backends.filter((b) => b.state === BackendState.READY).length;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    close();
  }
  for (let i = 0; i < CONNECTIONS; i++) {
    paths.push(gatewayPath(gateway.publicUrl, clientToken, "grpc", `gateway-${i}`));
  }
  // Warm every connection, and prove the bytes are right.
  await Promise.all(paths.map((p) => p.call({ bytes: 4096, verify: true })));
  const idleRssBytes = memoryBytes(gateway.pid).rssBytes;

  const runs: HeldRun[] = [];
  const firstErrors: string[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const run: HeldRun = {
      rssAllOpenBytes: 0,
      peakRssBytes: 0,
      maxConcurrentOpen: 0,
      allOpenMs: 0,
      errors: 0,
    };
    let open = 0;
    let everOpened = 0;
    const began = performance.now();
    const sampler = setInterval(() => {
      run.peakRssBytes = Math.max(run.peakRssBytes, memoryBytes(gateway.pid).rssBytes);
    }, 100);
    const holdUntil = performance.now() + HOLD_BUDGET_MS;
    let opening = 0;
    const openingDone: Array<() => void> = [];
    await Promise.all(
      Array.from({ length: STREAMS }, async (_, i) => {
        while (opening >= OPENING) await new Promise<void>((r) => openingDone.push(r));
        opening++;
        let opened = false;
        const leaveOpening = () => {
          opening--;
          openingDone.shift()?.();
        };
        const onFirstByte = () => {
          leaveOpening();
          opened = true;
          open++;
          everOpened++;
          run.maxConcurrentOpen = Math.max(run.maxConcurrentOpen, open);
          if (everOpened === STREAMS) {
            run.allOpenMs = performance.now() - began;
            run.rssAllOpenBytes = memoryBytes(gateway.pid).rssBytes;
          }
        };
        try {
          await (paths[i % paths.length] as BenchPath).call({
            bytes: ANSWER_BYTES,
            chunkBytes: 16_384,
            holdMs: Math.round(Math.max(MIN_HOLD_MS, holdUntil - performance.now())),
            onFirstByte,
          });
        } catch (err) {
          if (!opened) leaveOpening();
          run.errors++;
          if (firstErrors.length < 3) firstErrors.push(String(err).slice(0, 300));
        } finally {
          if (opened) open--;
        }
      }),
    );
    clearInterval(sampler);
    runs.push(run);
    console.error(`held streams: repetition ${rep + 1}/${reps} done`);
  }

  const s = (pick: (r: HeldRun) => number) => spread(runs.map(pick));
  const figures = {
    idleRssMB: idleRssBytes / MB,
    rssAllOpenMB: s((r) => r.rssAllOpenBytes / MB),
    peakRssMB: s((r) => r.peakRssBytes / MB),
    maxConcurrentOpen: s((r) => r.maxConcurrentOpen),
    allOpenMs: s((r) => r.allOpenMs),
    errors: s((r) => r.errors),
  };
  printTable(
    `${STREAMS} streams held up to ${HOLD_BUDGET_MS} ms across ${AGENTS} agents, ${CONNECTIONS} client connections; median (range) of ${reps}`,
    [
      ["figure", "value"],
      ["gateway RSS idle, MB", figures.idleRssMB.toFixed(1)],
      ["gateway RSS when the last stream opened, MB", showSpread(figures.rssAllOpenMB, 1)],
      ["gateway peak RSS, MB", showSpread(figures.peakRssMB, 1)],
      ["most streams open at once", showSpread(figures.maxConcurrentOpen, 0)],
      ["time until all were open, ms", showSpread(figures.allOpenMs, 0)],
      ["errors", showSpread(figures.errors, 0)],
    ],
  );
  if (firstErrors.length > 0) {
    console.log(`first errors:\n  ${firstErrors.join("\n  ")}`);
    const warnings = gateway.recentLines().filter((l) => !l.includes('"level":30'));
    console.log(`gateway warnings:\n  ${warnings.slice(-10).join("\n  ")}`);
  }
  const allHeld = runs.every((r) => r.errors === 0 && r.maxConcurrentOpen === STREAMS);
  const targets = [
    { key: "errors", value: Math.max(...runs.map((r) => r.errors)), op: "<=", limit: 0 },
    {
      key: "peakRssMB",
      value: figures.peakRssMB.median,
      op: "<=",
      limit: RSS_TARGET_BYTES / MB,
    },
  ].map((t) => ({ ...t, met: t.value <= t.limit && allHeld }));
  printTable("targets", [
    ["target", "measured", "met"],
    [
      `${STREAMS} streams held at once, zero errors`,
      `${figures.errors.max} errors`,
      targets[0]?.met ? "yes" : "NO",
    ],
    [
      "gateway RSS ≤ 300 MB",
      `${figures.peakRssMB.median.toFixed(1)} MB peak`,
      targets[1]?.met ? "yes" : "NO",
    ],
  ]);
  console.log(
    JSON.stringify({
      bench: "held-streams",
      date: new Date().toISOString(),
      node: process.version,
      quick,
      reps,
      streams: STREAMS,
      agents: AGENTS,
      holdBudgetMs: HOLD_BUDGET_MS,
      openingAtOnce: OPENING,
      figures,
      targets,
    }),
  );
} finally {
  for (const path of paths) path.close();
  await Promise.all(started.reverse().map((proc) => proc.stop()));
}
