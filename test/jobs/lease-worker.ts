/**
 * One job runner in its own process, for test/jobs/two-gateways.postgres.test.ts: the real job
 * store and runner on a PostgreSQL database, with an executor that records each run (job, runner,
 * attempt) and whether its lease was valid when it started and when it ended, then sleeps briefly.
 *
 * Environment: DATABASE_URL, RUNNER_ID, LEASE_MS, HEARTBEAT_MS, POLL_MS, CONCURRENCY, SLEEP_MS.
 * Prints `ready` on stdout once it runs; SIGTERM shuts it down cleanly.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { settingDefaults } from "../../services/config/settings.js";
import { openPostgresDatabase } from "../../services/database/postgres-database.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import type { JobExecutor } from "../../services/jobs/job-executor.js";
import { createJobRunner, jobRunnerLimitsFromSettings } from "../../services/jobs/job-runner.js";
import { jobSettings } from "../../services/jobs/job-settings.js";
import { createJobStore } from "../../services/jobs/job-store.js";
import { createFsBlobStore } from "../../services/object-store/fs-blob-store.js";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const runnerId = env("RUNNER_ID");
const sleepMs = Number(env("SLEEP_MS"));

// A valid lease: this runner holds this attempt of a running job, and the lease has not expired.
const LEASE_VALID = `(SELECT lease_owner = $2 AND attempts = $3 AND state = 'RUNNING'
  AND lease_expires_at > clock_timestamp() FROM jobs WHERE id = $1)`;

const db = await openPostgresDatabase({
  url: env("DATABASE_URL"),
  pool: { ...settingDefaults(gatewaySettings), databaseMaxConnections: 16 },
});
const blobDir = mkdtempSync(join(tmpdir(), "voxgate-lease-worker-"));
const blobs = createFsBlobStore({ rootDir: blobDir });
const executor: JobExecutor = {
  kind: "batch",
  async run(job, ctx) {
    await db.query(
      `INSERT INTO executions (job_id, runner_id, attempt, started, lease_ok_start)
       VALUES ($1, $2, $3, clock_timestamp(), ${LEASE_VALID})`,
      [job.id, runnerId, job.attempts],
    );
    try {
      await sleep(sleepMs, undefined, { signal: ctx.signal });
    } finally {
      // Also when the runner aborted the run (lease lost): only a killed process leaves no end.
      await db.query(
        `UPDATE executions SET ended = clock_timestamp(), lease_ok_end = ${LEASE_VALID}
         WHERE job_id = $1 AND runner_id = $2 AND attempt = $3`,
        [job.id, runnerId, job.attempts],
      );
    }
    return { output: {} };
  },
};
const runner = createJobRunner({
  store: createJobStore({ db }),
  executors: [executor],
  blobs,
  log: pino({ level: "warn" }, pino.destination(2)),
  runnerId,
  limits: {
    ...jobRunnerLimitsFromSettings(settingDefaults(jobSettings)),
    concurrency: Number(env("CONCURRENCY")),
    leaseMs: Number(env("LEASE_MS")),
    heartbeatMs: Number(env("HEARTBEAT_MS")),
    pollMs: Number(env("POLL_MS")),
    cancelPollMs: 200,
    retryBaseMs: 50,
    retryMaxMs: 200,
  },
});
runner.start();
process.stdout.write("ready\n");

process.once("SIGTERM", () => {
  void (async () => {
    await runner.shutdown();
    await blobs.close();
    await db.close();
    rmSync(blobDir, { recursive: true, force: true });
    process.exit(0);
  })();
});
