import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { migrate } from "../database/migrate.js";
import { openPgliteDatabase } from "../database/pglite-database.js";
import type { SqlDatabase } from "../database/sql-database.js";
import { newJobId } from "./job-ids.js";
import { jobMigrations } from "./job-migrations.js";
import { changeFromEvent, jobFromRow } from "./job-row.js";
import { createJobStore, type JobStore, type NewJob } from "./job-store.js";

let db: SqlDatabase;
let store: JobStore;
const changes: string[] = [];

beforeAll(async () => {
  db = await openPgliteDatabase();
  await migrate(db, jobMigrations);
  store = createJobStore({ db, onChange: (id) => changes.push(id) });
}, 60_000);
afterAll(async () => {
  await db?.close();
});
beforeEach(async () => {
  await db.exec("DELETE FROM jobs");
  changes.length = 0;
});

function newJob(overrides: Partial<NewJob> = {}): NewJob {
  return {
    id: newJobId(),
    kind: "batch",
    spec: { batch: { items: [] } },
    owner: "alice",
    ownerScopes: ["jobs"],
    requestId: "",
    maxAttempts: 3,
    webhookUrl: "",
    labels: {},
    ...overrides,
  };
}

/** Moves a job's lease into the past, as if its runner had stopped heartbeating long ago. */
async function expireLease(id: string): Promise<void> {
  await db.query("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1", [
    id,
  ]);
}

describe("job store", () => {
  it("creates a job once per owner and request id", async () => {
    const first = await store.create(newJob({ requestId: "r1", labels: { team: "a" } }));
    const again = await store.create(newJob({ requestId: "r1" }));
    const other = await store.create(newJob({ requestId: "r1", owner: "bob" }));
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.row.id).toBe(first.row.id);
    expect(other.created).toBe(true);
    expect(other.row.id).not.toBe(first.row.id);
    const count = await db.query<{ n: number }>("SELECT count(*)::int8 AS n FROM jobs");
    expect(count.rows[0]?.n).toBe(2);
    const job = jobFromRow(first.row);
    expect(job.labels).toEqual({ team: "a" });
    expect(job.spec?.kind.case).toBe("batch");
  });

  it("shows a job only to its owner when an owner is given", async () => {
    const { row } = await store.create(newJob());
    expect(await store.get(row.id, "alice")).toBeDefined();
    expect(await store.get(row.id, "bob")).toBeUndefined();
    expect(await store.get(row.id)).toBeDefined();
    expect(await store.list({ owner: "bob", offset: 0, limit: 10 })).toEqual([]);
    expect((await store.list({ offset: 0, limit: 10 })).map((r) => r.id)).toEqual([row.id]);
    expect((await store.cancel(row.id, "bob"))?.state).toBeUndefined();
    expect((await store.get(row.id))?.state).toBe("QUEUED");
  });

  it("re-claims a job whose lease expired and fences the stale runner", async () => {
    const { row } = await store.create(newJob());
    const [a] = await store.claim({ runnerId: "A", kinds: ["batch"], limit: 5, leaseMs: 60_000 });
    expect(a?.id).toBe(row.id);
    expect(a?.attempts).toBe(1);
    // Held and valid: nobody else may take it.
    expect(
      await store.claim({ runnerId: "B", kinds: ["batch"], limit: 5, leaseMs: 60_000 }),
    ).toEqual([]);
    await expireLease(row.id);
    const [b] = await store.claim({ runnerId: "B", kinds: ["batch"], limit: 5, leaseMs: 60_000 });
    expect(b?.lease_owner).toBe("B");
    expect(b?.attempts).toBe(2);
    const staleLease = { jobId: row.id, runnerId: "A", attempt: 1 };
    expect(await store.heartbeat(staleLease, 60_000)).toBe(false);
    expect(await store.progress(staleLease, 1, 2, "stale")).toBe(false);
    expect(await store.complete(staleLease, { contentType: "x" }, "k")).toBe(false);
    expect(await store.fail(staleLease, 13, "stale")).toBe(false);
    const bLease = { jobId: row.id, runnerId: "B", attempt: 2 };
    expect(await store.heartbeat(bLease, 60_000)).toBe(true);
    expect(await store.progress(bLease, 1, 2, "half")).toBe(true);
    expect(await store.complete(bLease, { contentType: "audio/wav" }, "jobs/x/out.wav")).toBe(true);
    const done = await store.get(row.id);
    expect(done?.state).toBe("SUCCEEDED");
    expect(done?.progress_message).toBe("half");
    expect(done?.output_key).toBe("jobs/x/out.wav");
    expect(jobFromRow(done as NonNullable<typeof done>).output?.contentType).toBe("audio/wav");
  });

  it("records every change in order for watchers", async () => {
    const { row } = await store.create(newJob());
    const [claimed] = await store.claim({
      runnerId: "A",
      kinds: ["batch"],
      limit: 1,
      leaseMs: 60_000,
    });
    const lease = { jobId: row.id, runnerId: "A", attempt: claimed?.attempts ?? 0 };
    await store.progress(lease, 1, 3, "one");
    await store.progress(lease, 2, 3, "two");
    await store.complete(lease, {}, undefined);
    const events = await store.eventsAfter(row.id, 0);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    const states = events.map((e) => changeFromEvent(e.event));
    expect(states.map((c) => c.state)).toEqual([
      "QUEUED",
      "RUNNING",
      "RUNNING",
      "RUNNING",
      "SUCCEEDED",
    ]);
    expect(states.map((c) => c.progress_done)).toEqual([0, 0, 1, 2, 2]);
    expect(states[4]?.ended).toBeInstanceOf(Date);
    expect(await store.eventsAfter(row.id, 3)).toHaveLength(2);
    expect(changes.filter((id) => id === row.id)).toHaveLength(5);
  });

  it("queues a retried job until its backoff is over", async () => {
    const { row } = await store.create(newJob());
    await store.claim({ runnerId: "A", kinds: ["batch"], limit: 1, leaseMs: 60_000 });
    expect(
      await store.retry({ jobId: row.id, runnerId: "A", attempt: 1 }, 60_000, 14, "down"),
    ).toBe(true);
    const queued = await store.get(row.id);
    expect(queued?.state).toBe("QUEUED");
    expect(queued?.lease_owner).toBeNull();
    expect(queued?.error_message).toBe("down");
    expect(
      await store.claim({ runnerId: "A", kinds: ["batch"], limit: 1, leaseMs: 60_000 }),
    ).toEqual([]);
    await db.query("UPDATE jobs SET run_after = now() WHERE id = $1", [row.id]);
    const [again] = await store.claim({
      runnerId: "B",
      kinds: ["batch"],
      limit: 1,
      leaseMs: 60_000,
    });
    expect(again?.attempts).toBe(2);
  });

  it("claims only the kinds a runner can run", async () => {
    await store.create(newJob({ kind: "render", spec: { render: {} } }));
    expect(
      await store.claim({ runnerId: "A", kinds: ["batch"], limit: 5, leaseMs: 60_000 }),
    ).toEqual([]);
    expect(
      await store.claim({ runnerId: "A", kinds: ["render"], limit: 5, leaseMs: 60_000 }),
    ).toHaveLength(1);
  });

  it("fails a job whose lease expired on its last attempt instead of running it again", async () => {
    const { row } = await store.create(newJob({ maxAttempts: 1 }));
    await store.claim({ runnerId: "A", kinds: ["batch"], limit: 1, leaseMs: 60_000 });
    await expireLease(row.id);
    expect(
      await store.claim({ runnerId: "B", kinds: ["batch"], limit: 1, leaseMs: 60_000 }),
    ).toEqual([]);
    expect(await store.failExhausted()).toEqual([row.id]);
    const failed = await store.get(row.id);
    expect(failed?.state).toBe("FAILED");
    expect(failed?.error_code).toBe(10);
    expect(failed?.error_message).toContain("VOXGATE_JOB_MAX_ATTEMPTS");
  });

  it("cancels queued and running jobs, fencing the runner, and leaves ended jobs alone", async () => {
    const queued = await store.create(newJob());
    const cancelled = await store.cancel(queued.row.id);
    expect(cancelled?.state).toBe("CANCELLED");
    expect(cancelled?.ended).toBeInstanceOf(Date);
    const running = await store.create(newJob());
    await store.claim({ runnerId: "A", kinds: ["batch"], limit: 5, leaseMs: 60_000 });
    expect((await store.cancel(running.row.id))?.state).toBe("CANCELLED");
    const lease = { jobId: running.row.id, runnerId: "A", attempt: 1 };
    expect(await store.complete(lease, {}, undefined)).toBe(false);
    expect((await store.leaseStatus([running.row.id])).get(running.row.id)?.state).toBe(
      "CANCELLED",
    );
    const again = await store.cancel(running.row.id);
    expect(again?.state).toBe("CANCELLED");
    expect(again?.event_seq).toBe(3);
    expect(await store.cancel(newJobId())).toBeUndefined();
  });

  it("queues one webhook delivery when a job with a webhook ends", async () => {
    const { row } = await store.create(newJob({ webhookUrl: "https://hooks.example.com/x" }));
    const none = await db.query("SELECT job_id FROM webhook_deliveries");
    expect(none.rowCount).toBe(0);
    await store.cancel(row.id);
    await store.cancel(row.id);
    const queued = await db.query<{ job_id: string; url: string }>(
      "SELECT job_id, url FROM webhook_deliveries",
    );
    expect(queued.rows).toEqual([{ job_id: row.id, url: "https://hooks.example.com/x" }]);
  });

  it("gives a job back at shutdown without counting the attempt", async () => {
    const { row } = await store.create(newJob());
    await store.claim({ runnerId: "A", kinds: ["batch"], limit: 1, leaseMs: 60_000 });
    expect(await store.release({ jobId: row.id, runnerId: "A", attempt: 1 })).toBe(true);
    const back = await store.get(row.id);
    expect(back?.state).toBe("QUEUED");
    expect(back?.attempts).toBe(0);
  });
});
