/**
 * THE PROOF of durable jobs across gateways: two runners in separate processes share one real
 * PostgreSQL server and a queue of jobs. Every job runs exactly once while its lease is valid and
 * none is lost; when one runner is killed with SIGKILL mid-way, the jobs it held are re-run by the
 * other exactly once, after their leases expired, and no job completes twice.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { settingDefaults } from "../../services/config/settings.js";
import { migrate } from "../../services/database/migrate.js";
import { openPostgresDatabase } from "../../services/database/postgres-database.js";
import type { SqlDatabase } from "../../services/database/sql-database.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import { newJobId } from "../../services/jobs/job-ids.js";
import { jobMigrations } from "../../services/jobs/job-migrations.js";
import { createJobStore } from "../../services/jobs/job-store.js";
import { type PostgresServer, startPostgresServer } from "../helpers/postgres-server.js";

const WORKER = fileURLToPath(new URL("./lease-worker.ts", import.meta.url));

const EXECUTIONS = {
  id: "test/executions",
  sql: `CREATE TABLE executions (
          job_id text NOT NULL, runner_id text NOT NULL, attempt integer NOT NULL,
          started timestamptz NOT NULL, ended timestamptz,
          lease_ok_start boolean, lease_ok_end boolean,
          PRIMARY KEY (job_id, runner_id, attempt))`,
};

let server: PostgresServer;
const children: ChildProcess[] = [];
const stderrOf = new Map<ChildProcess, string>();
const databases: SqlDatabase[] = [];

beforeAll(async () => {
  server = await startPostgresServer();
}, 60_000);
afterEach(async () => {
  for (const [child, text] of stderrOf) {
    // Warnings of the runners (failed writes, lost leases) explain any extra run.
    if (text) console.log(`worker ${child.pid} stderr (last 3000 chars):\n${text.slice(-3000)}`);
  }
  stderrOf.clear();
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
  }
  await Promise.all(databases.splice(0).map((db) => db.close()));
});
afterAll(async () => {
  await server?.stop();
});

interface WorkerOptions {
  url: string;
  runnerId: string;
  leaseMs: number;
  heartbeatMs: number;
  concurrency: number;
  sleepMs: number;
}

async function startWorker(o: WorkerOptions): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", WORKER], {
    env: {
      ...process.env,
      DATABASE_URL: o.url,
      RUNNER_ID: o.runnerId,
      LEASE_MS: String(o.leaseMs),
      HEARTBEAT_MS: String(o.heartbeatMs),
      POLL_MS: "50",
      CONCURRENCY: String(o.concurrency),
      SLEEP_MS: String(o.sleepMs),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
    stderrOf.set(child, stderr);
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      if (d.toString().includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`worker exited (${code}): ${stderr}`)));
  });
  return child;
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
}

async function openDatabase(name: string): Promise<{ url: string; db: SqlDatabase }> {
  const url = await server.createDatabase(name);
  const db = await openPostgresDatabase({ url, pool: settingDefaults(gatewaySettings) });
  databases.push(db);
  await migrate(db, [...jobMigrations, EXECUTIONS]);
  return { url, db };
}

async function queueJobs(db: SqlDatabase, count: number): Promise<void> {
  const store = createJobStore({ db });
  for (let at = 0; at < count; at += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, count - at) }, () =>
        store.create({
          id: newJobId(),
          kind: "batch",
          spec: { batch: { items: [{ text: "x" }] } },
          owner: "proof",
          ownerScopes: ["jobs"],
          requestId: "",
          maxAttempts: 3,
          webhookUrl: "",
          labels: {},
        }),
      ),
    );
  }
}

async function count(db: SqlDatabase, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: number }>(sql, params);
  return rows[0]?.n ?? 0;
}

async function waitUntil(probe: () => Promise<boolean>, what: string, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Execution {
  job_id: string;
  runner_id: string;
  attempt: number;
  ended: Date | null;
  lease_ok_start: boolean | null;
  lease_ok_end: boolean | null;
  final_owner: string;
  final_attempt: number;
}

/** Splits runs into the one that completed each job (its lease owner and attempt) and the rest. */
function splitRuns(runs: Execution[]): { completing: Execution[]; others: Execution[] } {
  const isCompleting = (r: Execution) =>
    r.runner_id === r.final_owner && r.attempt === r.final_attempt;
  return { completing: runs.filter(isCompleting), others: runs.filter((r) => !isCompleting(r)) };
}

const EXECUTIONS_WITH_JOB = `SELECT e.*, j.lease_owner AS final_owner, j.attempts AS final_attempt
  FROM executions e JOIN jobs j ON j.id = e.job_id`;

/** Number of SUCCEEDED entries in each job's history: a job completing twice would show 2. */
const COMPLETIONS_PER_JOB = `SELECT count(*)::int8 AS n FROM (
    SELECT job_id FROM job_events WHERE event->>'state' = 'SUCCEEDED'
    GROUP BY job_id HAVING count(*) <> 1) twice`;

describe("two runners on one PostgreSQL server", () => {
  it("run 1,000 queued jobs exactly once each, each while its lease is valid", async () => {
    const { url, db } = await openDatabase("jobs_two_runners");
    const options = { url, leaseMs: 30_000, heartbeatMs: 1000, concurrency: 8, sleepMs: 2 };
    const [a, b] = await Promise.all([
      startWorker({ ...options, runnerId: "runner-a" }),
      startWorker({ ...options, runnerId: "runner-b" }),
    ]);
    await queueJobs(db, 1000);
    await waitUntil(
      async () =>
        (await count(db, "SELECT count(*)::int8 AS n FROM jobs WHERE state = 'SUCCEEDED'")) ===
        1000,
      "1,000 jobs to succeed",
    );
    await Promise.all([stopWorker(a), stopWorker(b)]);

    expect(await count(db, "SELECT count(*)::int8 AS n FROM jobs WHERE state <> 'SUCCEEDED'")).toBe(
      0,
    );
    const runs = (await db.query<Execution>(EXECUTIONS_WITH_JOB)).rows;
    const { completing, others } = splitRuns(runs);
    expect(completing).toHaveLength(1000);
    expect(new Set(completing.map((r) => r.job_id)).size).toBe(1000);
    for (const run of completing) {
      expect(run).toMatchObject({ lease_ok_start: true, lease_ok_end: true });
      expect(run.ended).toBeInstanceOf(Date);
    }
    // A second run can only come from a lease that was lost (its runner stalled past the lease,
    // which a 30 s lease makes unlikely): such a run never ends holding a valid lease.
    for (const run of others) expect(run.lease_ok_end).not.toBe(true);
    expect(runs).toHaveLength(1000 + others.length);
    const perRunner = new Map<string, number>();
    for (const run of completing) {
      perRunner.set(run.runner_id, (perRunner.get(run.runner_id) ?? 0) + 1);
    }
    expect(perRunner.get("runner-a")).toBeGreaterThan(0);
    expect(perRunner.get("runner-b")).toBeGreaterThan(0);
    expect(await count(db, COMPLETIONS_PER_JOB)).toBe(0);
    console.log(
      `two runners: completed ${JSON.stringify(Object.fromEntries(perRunner))}, runs after a lost lease ${others.length}`,
    );
  }, 180_000);

  it("re-runs a SIGKILLed runner's jobs on the other exactly once after their leases expire", async () => {
    const { url, db } = await openDatabase("jobs_killed_runner");
    const options = { url, leaseMs: 2500, heartbeatMs: 400, concurrency: 4, sleepMs: 20 };
    const a = await startWorker({ ...options, runnerId: "runner-a" });
    const b = await startWorker({ ...options, runnerId: "runner-b" });
    const total = 200;
    await queueJobs(db, total);
    // Kill A while it is mid-way: some jobs done, some running (started, not ended).
    await waitUntil(
      async () =>
        (await count(
          db,
          "SELECT count(*)::int8 AS n FROM executions WHERE runner_id = 'runner-a' AND ended IS NOT NULL",
        )) >= 20 &&
        (await count(
          db,
          "SELECT count(*)::int8 AS n FROM executions WHERE runner_id = 'runner-a' AND ended IS NULL",
        )) >= 2,
      "runner A to be mid-way",
    );
    const exited = once(a, "exit");
    a.kill("SIGKILL");
    await exited;
    await waitUntil(
      async () =>
        (await count(db, "SELECT count(*)::int8 AS n FROM jobs WHERE state = 'SUCCEEDED'")) ===
        total,
      `${total} jobs to succeed`,
    );
    await stopWorker(b);

    expect(await count(db, "SELECT count(*)::int8 AS n FROM jobs WHERE state <> 'SUCCEEDED'")).toBe(
      0,
    );
    const runs = (await db.query<Execution>(EXECUTIONS_WITH_JOB)).rows;
    const { completing, others: interrupted } = splitRuns(runs);
    // Exactly one completing run per job, and it held a valid lease from start to end.
    expect(completing).toHaveLength(total);
    expect(new Set(completing.map((r) => r.job_id)).size).toBe(total);
    for (const run of completing) {
      expect(run).toMatchObject({ lease_ok_start: true, lease_ok_end: true });
    }
    // A's runs cut short by the kill: mid-run (a killed process alone leaves a run without an
    // end), or between its end and the completing write. Each started under a valid lease and was
    // re-run by B on a later attempt — after the lease expired, since B's claim requires that.
    const killed = interrupted.filter(
      (r) => r.runner_id === "runner-a" && (r.ended === null || r.lease_ok_end === true),
    );
    expect(killed.filter((r) => r.ended === null).length).toBeGreaterThan(0);
    expect(killed.length).toBeLessThanOrEqual(options.concurrency);
    for (const run of killed) {
      expect(run.lease_ok_start).toBe(true);
      expect(run.final_owner).toBe("runner-b");
      expect(run.final_attempt).toBeGreaterThan(run.attempt);
    }
    // Any other extra run lost its lease before it ended (its runner stalled past the lease on a
    // busy machine and was aborted), so it completed nothing.
    for (const run of interrupted) {
      if (!killed.includes(run)) expect(run.lease_ok_end).toBe(false);
    }
    expect(runs).toHaveLength(total + interrupted.length);
    expect(await count(db, COMPLETIONS_PER_JOB)).toBe(0);
    const byA = completing.filter((r) => r.runner_id === "runner-a").length;
    expect(byA).toBeGreaterThan(0);
    console.log(
      `killed runner: A completed ${byA}, B completed ${total - byA}, re-run after the kill ${killed.length}, other extra runs ${interrupted.length - killed.length}`,
    );
  }, 180_000);
});
