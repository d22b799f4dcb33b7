import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import pino from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Job } from "../../gen/voxgate/v1/job_pb.js";
import { settingDefaults } from "../config/settings.js";
import { migrate } from "../database/migrate.js";
import { openPgliteDatabase } from "../database/pglite-database.js";
import type { SqlDatabase } from "../database/sql-database.js";
import type { BlobStore } from "../object-store/blob-store.js";
import { createFsBlobStore } from "../object-store/fs-blob-store.js";
import { isJobCancelledError, isLeaseLostError } from "./job-errors.js";
import { createJobEvents, type JobEvents } from "./job-events.js";
import type { JobContext, JobExecutor, JobResult } from "./job-executor.js";
import { newJobId } from "./job-ids.js";
import { jobMigrations } from "./job-migrations.js";
import { changeFromEvent } from "./job-row.js";
import {
  createJobRunner,
  type JobRunner,
  type JobRunnerLimits,
  jobRunnerLimitsFromSettings,
} from "./job-runner.js";
import { jobSettings } from "./job-settings.js";
import { createJobStore, type JobStore } from "./job-store.js";

const log = pino({ level: "silent" });
let db: SqlDatabase;
let store: JobStore;
let events: JobEvents;
let blobs: BlobStore;
let blobDir: string;
const runners: JobRunner[] = [];

type Behaviour = (job: Job, ctx: JobContext) => Promise<JobResult>;
let behaviour: Behaviour;
const executor: JobExecutor = { kind: "batch", run: (job, ctx) => behaviour(job, ctx) };

beforeAll(async () => {
  db = await openPgliteDatabase();
  await migrate(db, jobMigrations);
  blobDir = mkdtempSync(join(tmpdir(), "voxgate-runner-test-"));
  blobs = createFsBlobStore({ rootDir: blobDir });
}, 60_000);
afterAll(async () => {
  await db?.close();
  await blobs?.close();
  rmSync(blobDir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.exec("DELETE FROM jobs");
  events = createJobEvents();
  store = createJobStore({ db, onChange: (id) => events.emit("changed", id) });
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.shutdown()));
});

/** What a started gateway's runner has: the job settings' defaults. */
const RUNNER_DEFAULTS = jobRunnerLimitsFromSettings(settingDefaults(jobSettings));

const FAST: Partial<JobRunnerLimits> = {
  concurrency: 2,
  leaseMs: 5000,
  heartbeatMs: 100,
  pollMs: 50,
  cancelPollMs: 50,
  retryBaseMs: 20,
  retryMaxMs: 100,
};

function startRunner(limits: Partial<JobRunnerLimits> = {}, runnerId?: string): JobRunner {
  const runner = createJobRunner({
    store,
    executors: [executor],
    blobs,
    log,
    events,
    limits: { ...RUNNER_DEFAULTS, ...FAST, ...limits },
    ...(runnerId ? { runnerId } : {}),
  });
  runners.push(runner);
  runner.start();
  return runner;
}

async function queue(maxAttempts = 3): Promise<string> {
  const { row } = await store.create({
    id: newJobId(),
    kind: "batch",
    spec: { batch: { items: [{ text: "hi" }] } },
    owner: "alice",
    ownerScopes: ["jobs"],
    requestId: "",
    maxAttempts,
    webhookUrl: "",
    labels: {},
  });
  events.emit("created", row.id);
  return row.id;
}

async function waitFor<T>(probe: () => Promise<T | undefined | false>, what: string): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ended = (id: string) =>
  waitFor(async () => {
    const row = await store.get(id);
    return row && ["SUCCEEDED", "FAILED", "CANCELLED"].includes(row.state) ? row : undefined;
  }, `job ${id} to end`);

/** A promise with its resolve function (Node 20 has no Promise.withResolvers). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Resolves with the abort reason once the executor's signal aborts. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
  });
}

describe("job runner", () => {
  it("runs a job with progress, stores its output and records the history in order", async () => {
    behaviour = async (job, ctx) => {
      expect(ctx.owner?.name).toBe("alice");
      expect(ctx.keyPrefix).toBe(`jobs/${job.id.slice(4)}/`);
      await ctx.reportProgress(1, 2, "first");
      await ctx.blobs.put(`${ctx.keyPrefix}out.wav`, new Uint8Array([1, 2, 3]), {
        contentType: "audio/wav",
      });
      await ctx.reportProgress(2, 2, "second");
      return {
        output: { contentType: "audio/wav", sizeBytes: 3n },
        outputKey: `${ctx.keyPrefix}out.wav`,
      };
    };
    const id = await queue();
    const runner = startRunner();
    const row = await ended(id);
    expect(row.state).toBe("SUCCEEDED");
    expect(row.attempts).toBe(1);
    expect(row.lease_owner).toBe(runner.id);
    expect(row.output_key).toMatch(/^jobs\/[a-z2-7]{26}\/out\.wav$/);
    expect((await blobs.stat(row.output_key ?? ""))?.sizeBytes).toBe(3);
    const history = (await store.eventsAfter(id, 0)).map((e) => changeFromEvent(e.event));
    expect(history.map((c) => `${c.state}:${c.progress_done}`)).toEqual([
      "QUEUED:0",
      "RUNNING:0",
      "RUNNING:1",
      "RUNNING:2",
      "SUCCEEDED:2",
    ]);
  });

  it("retries a failed attempt after a backoff and then succeeds", async () => {
    let calls = 0;
    behaviour = async () => {
      calls++;
      if (calls === 1) throw new ConnectError("backend broke", Code.Internal);
      return { output: {} };
    };
    const id = await queue();
    startRunner();
    const row = await ended(id);
    expect(row.state).toBe("SUCCEEDED");
    expect(row.attempts).toBe(2);
    expect(calls).toBe(2);
    const history = (await store.eventsAfter(id, 0)).map((e) => changeFromEvent(e.event));
    const retried = history.find((c) => c.state === "QUEUED" && c.error_code === Code.Internal);
    expect(retried?.error_message).toBe("backend broke");
  });

  it("retries runs that found no backend without using up attempts", async () => {
    let calls = 0;
    behaviour = async () => {
      calls++;
      if (calls <= 4) throw new ConnectError("no backend is connected", Code.Unavailable);
      return { output: {} };
    };
    const id = await queue(1);
    startRunner();
    const row = await ended(id);
    expect(row.state).toBe("SUCCEEDED");
    expect(calls).toBe(5);
    expect(row.attempts).toBe(1);
    expect(row.unavailable_retries).toBe(4);
  });

  it("waits on a full object store without using attempts, and finishes once space returns", async () => {
    // Before: a full disk made a render burn its 3 attempts in seconds and fail for good with the
    // raw ENOSPC text. The store here implements BlobStore and refuses writes like a full disk
    // (ENOSPC-coded errors) until `full` turns false.
    let full = true;
    let refused = 0;
    const fullStore: BlobStore = {
      ...blobs,
      async put(key, body, options) {
        if (full) {
          refused++;
          throw Object.assign(new Error(`ENOSPC: no space left on device, open '/x/${key}'`), {
            code: "ENOSPC",
          });
        }
        return blobs.put(key, body, options);
      },
    };
    behaviour = async (_job, ctx) => {
      await ctx.blobs.put(`${ctx.keyPrefix}output.bin`, new Uint8Array([1, 2, 3]), {
        contentType: "application/octet-stream",
      });
      return { output: {}, outputKey: `${ctx.keyPrefix}output.bin` };
    };
    const id = await queue(1);
    const runner = createJobRunner({
      store,
      executors: [executor],
      blobs: fullStore,
      log,
      events,
      limits: { ...RUNNER_DEFAULTS, ...FAST, unavailableRetryMaxMs: 50, maxUnavailableRetries: 2 },
    });
    runners.push(runner);
    runner.start();
    // More refused runs than the attempts (1) and the no-backend budget (2) allow.
    await waitFor(async () => refused >= 5, "five refused runs");
    const waiting = await store.get(id);
    expect(waiting?.state).not.toBe("FAILED");
    expect(waiting?.error_message).toMatch(/^the object store is full \(ENOSPC/);
    expect(waiting?.error_message).not.toContain("/x/");
    full = false;
    const row = await ended(id);
    expect(row.state).toBe("SUCCEEDED");
    expect(row.attempts).toBe(1);
    expect(row.unavailable_retries).toBe(0);
  });

  it("counts UNAVAILABLE runs as attempts once the refund budget is spent", async () => {
    let calls = 0;
    behaviour = async () => {
      calls++;
      throw new ConnectError("no backend is connected", Code.Unavailable);
    };
    const id = await queue(2);
    startRunner({ maxUnavailableRetries: 3 });
    const row = await ended(id);
    expect(row.state).toBe("FAILED");
    expect(calls).toBe(3 + 2);
    expect(row.unavailable_retries).toBe(3);
    expect(row.error_message).toBe(
      "no backend is connected (attempt 2 of 2, VOXGATE_JOB_MAX_ATTEMPTS)",
    );
  });

  it("fails at once on a non-retryable error", async () => {
    let calls = 0;
    behaviour = async () => {
      calls++;
      throw new ConnectError("voice missing", Code.NotFound);
    };
    const id = await queue();
    startRunner();
    const row = await ended(id);
    expect(row.state).toBe("FAILED");
    expect(row.error_code).toBe(Code.NotFound);
    expect(row.error_message).toBe("voice missing");
    expect(calls).toBe(1);
  });

  it("fails after the last allowed attempt, naming the setting", async () => {
    let calls = 0;
    behaviour = async () => {
      calls++;
      throw new Error("boom");
    };
    const id = await queue(2);
    startRunner();
    const row = await ended(id);
    expect(row.state).toBe("FAILED");
    expect(calls).toBe(2);
    expect(row.attempts).toBe(2);
    expect(row.error_message).toBe("boom (attempt 2 of 2, VOXGATE_JOB_MAX_ATTEMPTS)");
  });

  it("aborts the executor when another gateway cancels the job, and keeps it cancelled", async () => {
    let reason: Promise<unknown> | undefined;
    const started = deferred();
    behaviour = async (_job, ctx) => {
      reason = aborted(ctx.signal);
      started.resolve();
      await reason;
      return { output: { contentType: "late" } };
    };
    const id = await queue();
    startRunner();
    await started.promise;
    // Straight through the store, as a CancelJob on another gateway would: no local event.
    await store.cancel(id);
    expect(isJobCancelledError(await reason)).toBe(true);
    await waitFor(async () => runners[0]?.inFlight === 0, "the run to end");
    const row = await store.get(id);
    expect(row?.state).toBe("CANCELLED");
    expect(row?.output).toBeNull();
  });

  it("aborts at once on a local cancel even with a slow cancel poll", async () => {
    let reason: Promise<unknown> | undefined;
    const started = deferred();
    behaviour = async (_job, ctx) => {
      reason = aborted(ctx.signal);
      started.resolve();
      await reason;
      throw ctx.signal.reason;
    };
    const id = await queue();
    startRunner({ cancelPollMs: 60_000 });
    await started.promise;
    await store.cancel(id);
    events.emit("cancelled", id);
    expect(isJobCancelledError(await reason)).toBe(true);
  });

  it("aborts a runner that lost its lease and drops its late result", async () => {
    let reason: Promise<unknown> | undefined;
    const started = deferred();
    behaviour = async (_job, ctx) => {
      reason = aborted(ctx.signal);
      started.resolve();
      await reason;
      return { output: { contentType: "stale" } };
    };
    const id = await queue();
    startRunner();
    await started.promise;
    // Another runner took the job over (as after this one's lease had expired).
    await db.query("UPDATE jobs SET lease_owner = 'thief', attempts = attempts + 1 WHERE id = $1", [
      id,
    ]);
    expect(isLeaseLostError(await reason)).toBe(true);
    await waitFor(async () => runners[0]?.inFlight === 0, "the run to end");
    const row = await store.get(id);
    expect(row?.state).toBe("RUNNING");
    expect(row?.lease_owner).toBe("thief");
    expect(row?.output).toBeNull();
  });

  it("gives running jobs back at shutdown without counting the attempt", async () => {
    const started = deferred();
    behaviour = async (_job, ctx) => {
      started.resolve();
      await aborted(ctx.signal);
      throw ctx.signal.reason;
    };
    const id = await queue();
    const runner = startRunner();
    await started.promise;
    await runner.shutdown();
    expect(runner.state).toBe("STOPPED");
    const row = await store.get(id);
    expect(row?.state).toBe("QUEUED");
    expect(row?.attempts).toBe(0);
    expect(row?.lease_owner).toBeNull();
  });

  it("re-runs a stopped runner's job once its lease expired", async () => {
    const id = await queue();
    // A runner that claimed the job and died: its lease runs out and nobody renews it.
    await store.claim({ runnerId: "dead", kinds: ["batch"], limit: 1, leaseMs: 300 });
    const seen: number[] = [];
    behaviour = async (job) => {
      seen.push(job.attempts);
      return { output: {} };
    };
    const runner = startRunner();
    const row = await ended(id);
    expect(row.state).toBe("SUCCEEDED");
    expect(row.lease_owner).toBe(runner.id);
    expect(seen).toEqual([2]);
  });
});
