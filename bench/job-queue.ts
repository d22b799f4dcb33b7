/**
 * Job queue benchmark: how many jobs per second one runner claims and completes (an executor that
 * does nothing, so the cost is the queue's own SQL), and how soon a cancel reaches a running
 * executor — made on another gateway (found by the runner's cancel poll) and on the same gateway
 * (a local signal). Embedded PGlite in memory; no network.
 *
 *   node --import tsx bench/job-queue.ts [--jobs N] [--cancels N]
 *
 * Prints a table and one JSON line of figures.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pino from "pino";
import { settingDefaults } from "../services/config/settings.js";
import { migrate } from "../services/database/migrate.js";
import { openPgliteDatabase } from "../services/database/pglite-database.js";
import { createJobEvents } from "../services/jobs/job-events.js";
import type { JobExecutor } from "../services/jobs/job-executor.js";
import { newJobId } from "../services/jobs/job-ids.js";
import { jobMigrations } from "../services/jobs/job-migrations.js";
import { createJobRunner, jobRunnerLimitsFromSettings } from "../services/jobs/job-runner.js";
import { jobSettings } from "../services/jobs/job-settings.js";
import { createJobStore } from "../services/jobs/job-store.js";
import { createFsBlobStore } from "../services/object-store/fs-blob-store.js";

const { values } = parseArgs({
  options: { jobs: { type: "string" }, cancels: { type: "string" } },
});
const jobCount = Number(values.jobs ?? 500);
const cancelCount = Number(values.cancels ?? 10);
const CANCEL_POLL_MS = 250;

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const db = await openPgliteDatabase();
await migrate(db, jobMigrations);
const events = createJobEvents();
const store = createJobStore({ db, onChange: (id) => events.emit("changed", id) });
const dir = mkdtempSync(join(tmpdir(), "voxgate-bench-jobs-"));
const blobs = createFsBlobStore({ rootDir: dir });

let mode: "noop" | "hold" = "noop";
const aborted = new Map<string, (at: number) => void>();
const started = new Map<string, () => void>();
const executor: JobExecutor = {
  kind: "batch",
  async run(job, ctx) {
    if (mode === "noop") return { output: {} };
    started.get(job.id)?.();
    await new Promise<void>((resolve) => {
      ctx.signal.addEventListener("abort", () => {
        aborted.get(job.id)?.(performance.now());
        resolve();
      });
    });
    throw ctx.signal.reason;
  },
};
const runner = createJobRunner({
  store,
  executors: [executor],
  blobs,
  events,
  log: pino({ level: "silent" }),
  limits: {
    ...jobRunnerLimitsFromSettings(settingDefaults(jobSettings)),
    concurrency: 4,
    pollMs: 50,
    cancelPollMs: CANCEL_POLL_MS,
    heartbeatMs: 5000,
  },
});

const newJob = () => ({
  id: newJobId(),
  kind: "batch",
  spec: { batch: { items: [] } },
  owner: "bench",
  ownerScopes: ["jobs"],
  requestId: "",
  maxAttempts: 3,
  webhookUrl: "",
  labels: {},
});

for (let i = 0; i < jobCount; i++) await store.create(newJob());
const t0 = performance.now();
runner.start();
for (;;) {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int8 AS n FROM jobs WHERE state = 'SUCCEEDED'",
  );
  if ((rows[0]?.n ?? 0) === jobCount) break;
  await new Promise((r) => setTimeout(r, 20));
}
const throughput = jobCount / ((performance.now() - t0) / 1000);

mode = "hold";
const remote: number[] = [];
const local: number[] = [];
for (let i = 0; i < cancelCount * 2; i++) {
  const job = newJob();
  const running = new Promise<void>((resolve) => started.set(job.id, resolve));
  const abortedAt = new Promise<number>((resolve) => aborted.set(job.id, resolve));
  await store.create(job);
  events.emit("created", job.id);
  await running;
  const at = performance.now();
  await store.cancel(job.id);
  // Even: as from another gateway (only the database knows); odd: on this gateway.
  if (i % 2 === 1) events.emit("cancelled", job.id);
  (i % 2 === 0 ? remote : local).push((await abortedAt) - at);
}
await runner.shutdown();
await blobs.close();
await db.close();
rmSync(dir, { recursive: true, force: true });

const figures = {
  jobsPerSecond: Math.round(throughput),
  remoteCancelP50Ms: Math.round(percentile(remote, 50)),
  remoteCancelMaxMs: Math.round(Math.max(...remote)),
  localCancelP50Ms: Math.round(percentile(local, 50) * 10) / 10,
  localCancelMaxMs: Math.round(Math.max(...local) * 10) / 10,
  cancelPollMs: CANCEL_POLL_MS,
};
console.log(`| figure | value |\n|---|---|`);
console.log(
  `| jobs completed per second (1 runner, 4 at once, no-op executor, PGlite) | ${figures.jobsPerSecond} |`,
);
console.log(
  `| cancel from another gateway → executor aborted, p50 / max (ms) | ${figures.remoteCancelP50Ms} / ${figures.remoteCancelMaxMs} |`,
);
console.log(
  `| cancel on the same gateway → executor aborted, p50 / max (ms) | ${figures.localCancelP50Ms} / ${figures.localCancelMaxMs} |`,
);
console.log(JSON.stringify({ bench: "job-queue", ...figures }));
