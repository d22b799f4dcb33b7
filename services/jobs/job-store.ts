import type { JsonValue } from "@bufbuild/protobuf";
import type { SqlDatabase } from "../database/sql-database.js";
import { CHANGE_SNAPSHOT_SQL, type JobRow, type JobStateName } from "./job-row.js";

/** What CreateJob stores. The id is made by voxgate, never taken from a caller. */
export interface NewJob {
  /** Job id (`newJobId()`). */
  id: string;
  /** `JobSpec.kind.case`, e.g. `render`. */
  kind: string;
  /** The spec as protobuf JSON. */
  spec: JsonValue;
  /** Tenant of the creating token; only that tenant (and admins) may see the job. */
  owner: string;
  /** Scopes the creator's token had; the job's executor acts with them (`JobContext.owner`). */
  ownerScopes: readonly string[];
  /** Caller's idempotency key; empty for none. */
  requestId: string;
  /** Runs allowed before the job fails. */
  maxAttempts: number;
  /** Webhook called when the job ends; empty for none. */
  webhookUrl: string;
  /** Caller-chosen labels. */
  labels: Record<string, string>;
}

/**
 * A runner's hold on one run of a job. Every write a runner makes is fenced by all three: once
 * another runner claimed the job (new owner, next attempt) or the job was cancelled, the write
 * matches no row and the runner learns it lost the job.
 */
export interface JobLease {
  /** Job id. */
  jobId: string;
  /** Runner holding the lease. */
  runnerId: string;
  /** Attempt number of this run (the job's `attempts` after the claim). */
  attempt: number;
}

/** One entry of a job's ordered change history. */
export interface JobEventRow {
  /** Position in the job's history, from 1. */
  seq: number;
  /** Snapshot of the changed fields (see `changeFromEvent`). */
  event: Record<string, unknown>;
}

/** Where a held job stands now, for a runner checking its leases. */
export interface LeaseStatus {
  /** Stored state. */
  state: JobStateName;
  /** Runner holding the lease, if any. */
  leaseOwner: string | null;
  /** Attempt number. */
  attempts: number;
}

/** Options of {@link createJobStore}. */
export interface JobStoreOptions {
  /** The database (migrated with `jobMigrations`). */
  db: SqlDatabase;
  /**
   * Called after every committed change of a job with its id, so watchers and runners on this
   * gateway hear of it at once (other gateways poll).
   */
  onChange?: (jobId: string) => void;
}

/** SQL access to jobs: create, read, claim with leases, and fenced runner writes. */
export interface JobStore {
  /**
   * Inserts a job, or returns the one the same owner created with the same request id
   * (`created: false`).
   */
  create(job: NewJob): Promise<{ row: JobRow; created: boolean }>;
  /** Reads the job an owner created with `requestId`, if any. */
  getByRequestId(owner: string, requestId: string): Promise<JobRow | undefined>;
  /** Reads a job; with `owner`, only a job of that owner. */
  get(id: string, owner?: string): Promise<JobRow | undefined>;
  /** Lists jobs newest first (with `owner`, only theirs; with `state`, only in that state). */
  list(query: {
    owner?: string | undefined;
    state?: JobStateName | undefined;
    offset: number;
    limit: number;
  }): Promise<JobRow[]>;
  /** Counts an owner's queued and running jobs. */
  countActive(owner: string): Promise<number>;
  /** Returns up to `limit` history entries after `afterSeq`, in order. */
  eventsAfter(id: string, afterSeq: number, limit?: number): Promise<JobEventRow[]>;
  /**
   * Cancels a queued or running job (with `owner`, only theirs) and returns it; a job that already
   * ended is returned unchanged; undefined when there is no such job.
   */
  cancel(id: string, owner?: string): Promise<JobRow | undefined>;
  /**
   * Claims up to `limit` runnable jobs of `kinds` for `runnerId`: queued ones whose backoff is over
   * and running ones whose lease expired (a stopped runner's), each for `leaseMs`. Each claim
   * counts one attempt. Rows locked by another claimer are skipped, never waited for.
   */
  claim(claim: {
    runnerId: string;
    kinds: readonly string[];
    limit: number;
    leaseMs: number;
  }): Promise<JobRow[]>;
  /** Fails running jobs whose lease expired on their last allowed attempt; returns their ids. */
  failExhausted(): Promise<string[]>;
  /** Extends a lease by `leaseMs` from now; false when the lease was lost. */
  heartbeat(lease: JobLease, leaseMs: number): Promise<boolean>;
  /** Reads where held jobs stand (cancelled, taken over) in one query. */
  leaseStatus(jobIds: readonly string[]): Promise<Map<string, LeaseStatus>>;
  /** Records progress; false when the lease was lost. */
  progress(lease: JobLease, done: number, total: number, message: string): Promise<boolean>;
  /** Marks the job succeeded; false when the lease was lost (the result is dropped). */
  complete(lease: JobLease, output: JsonValue, outputKey: string | undefined): Promise<boolean>;
  /** Marks the job failed for good; false when the lease was lost. */
  fail(lease: JobLease, code: number, message: string): Promise<boolean>;
  /** Queues the job again after `delayMs`, keeping the error; false when the lease was lost. */
  retry(
    lease: JobLease,
    delayMs: number,
    code: number,
    message: string,
    options?: {
      /** The run does not use up an attempt (no backend was up, storage was full). */
      refundAttempt?: boolean;
      /**
       * With `refundAttempt`, whether the refund counts against `unavailable_retries` (the
       * no-backend budget). Storage faults wait without limit instead. @default true
       */
      countRefund?: boolean;
    },
  ): Promise<boolean>;
  /**
   * Gives the job back at once without counting the attempt (this runner is shutting down);
   * false when the lease was already lost.
   */
  release(lease: JobLease): Promise<boolean>;
}

const LEASE_FENCE = "id = $1 AND lease_owner = $2 AND attempts = $3 AND state = 'RUNNING'";
const MS = "* interval '1 millisecond'";

/**
 * Wraps an UPDATE or INSERT of `jobs` (without RETURNING) so the same statement appends the
 * change to `job_events` and, when the job ended with a webhook, queues the delivery. One
 * statement is one atomic step on both PGlite and PostgreSQL, so history and webhooks can never
 * disagree with the row.
 */
function recorded(write: string, before = "", returning = "*"): string {
  return `WITH ${before ? `${before},` : ""}
    changed AS (${write} RETURNING ${returning}),
    events AS (
      INSERT INTO job_events (job_id, seq, event)
      SELECT id, event_seq, ${CHANGE_SNAPSHOT_SQL} FROM changed
    ),
    hooks AS (
      INSERT INTO webhook_deliveries (job_id, url)
      SELECT id, webhook_url FROM changed
      WHERE webhook_url <> '' AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
      ON CONFLICT (job_id) DO NOTHING
    )
    SELECT * FROM changed`;
}

/** Creates the store over a migrated database. */
export function createJobStore(options: JobStoreOptions): JobStore {
  const { db } = options;
  const changed = (rows: readonly { id: string }[]) => {
    for (const row of rows) options.onChange?.(row.id);
  };
  const fenced = async (lease: JobLease, set: string, params: readonly unknown[]) => {
    const { rows } = await db.query<JobRow>(
      recorded(`UPDATE jobs SET ${set}, event_seq = event_seq + 1 WHERE ${LEASE_FENCE}`),
      [lease.jobId, lease.runnerId, lease.attempt, ...params],
    );
    changed(rows);
    return rows.length === 1;
  };

  return {
    async create(job) {
      const { rows } = await db.query<JobRow>(
        recorded(
          `INSERT INTO jobs (id, kind, spec, owner, request_id, max_attempts, webhook_url, labels,
             owner_scopes)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb)
           ON CONFLICT (owner, request_id) WHERE request_id <> '' DO NOTHING`,
        ),
        [
          job.id,
          job.kind,
          job.spec,
          job.owner,
          job.requestId,
          job.maxAttempts,
          job.webhookUrl,
          job.labels,
          // As text: pg would send a JS array as a PostgreSQL array literal, not JSON.
          JSON.stringify(job.ownerScopes),
        ],
      );
      const inserted = rows[0];
      if (inserted) {
        changed(rows);
        return { row: inserted, created: true };
      }
      const existing = await db.query<JobRow>(
        "SELECT * FROM jobs WHERE owner = $1 AND request_id = $2",
        [job.owner, job.requestId],
      );
      const row = existing.rows[0];
      if (!row) throw new Error(`job with request id ${job.requestId} vanished`);
      return { row, created: false };
    },

    async getByRequestId(owner, requestId) {
      const { rows } = await db.query<JobRow>(
        "SELECT * FROM jobs WHERE owner = $1 AND request_id = $2 AND request_id <> ''",
        [owner, requestId],
      );
      return rows[0];
    },

    async get(id, owner) {
      const { rows } = await db.query<JobRow>(
        "SELECT * FROM jobs WHERE id = $1 AND ($2::text IS NULL OR owner = $2::text)",
        [id, owner ?? null],
      );
      return rows[0];
    },

    async list({ owner, state, offset, limit }) {
      const { rows } = await db.query<JobRow>(
        `SELECT * FROM jobs
         WHERE ($1::text IS NULL OR owner = $1::text) AND ($2::text IS NULL OR state = $2::text)
         ORDER BY created DESC, id DESC OFFSET $3 LIMIT $4`,
        [owner ?? null, state ?? null, offset, limit],
      );
      return rows;
    },

    async countActive(owner) {
      const { rows } = await db.query<{ n: number }>(
        "SELECT count(*)::int8 AS n FROM jobs WHERE owner = $1 AND state IN ('QUEUED', 'RUNNING')",
        [owner],
      );
      return rows[0]?.n ?? 0;
    },

    async eventsAfter(id, afterSeq, limit = 100) {
      const { rows } = await db.query<JobEventRow>(
        "SELECT seq, event FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        [id, afterSeq, limit],
      );
      return rows;
    },

    async cancel(id, owner) {
      const { rows } = await db.query<JobRow>(
        recorded(
          `UPDATE jobs SET state = 'CANCELLED', cancel_requested = true, ended = now(),
             event_seq = event_seq + 1
           WHERE id = $1 AND ($2::text IS NULL OR owner = $2::text)
             AND state IN ('QUEUED', 'RUNNING')`,
        ),
        [id, owner ?? null],
      );
      changed(rows);
      return rows[0] ?? this.get(id, owner);
    },

    async claim({ runnerId, kinds, limit, leaseMs }) {
      if (limit <= 0 || kinds.length === 0) return [];
      const { rows } = await db.query<JobRow>(
        recorded(
          `UPDATE jobs j SET state = 'RUNNING', lease_owner = $3,
             lease_expires_at = now() + $4::float8 ${MS}, attempts = j.attempts + 1,
             started = now(), event_seq = j.event_seq + 1
           FROM picked WHERE j.id = picked.id`,
          `picked AS (
             SELECT id FROM jobs
             WHERE kind = ANY($1::text[])
               AND ((state = 'QUEUED' AND run_after <= now())
                 OR (state = 'RUNNING' AND lease_expires_at < now() AND attempts < max_attempts))
             ORDER BY run_after, id
             LIMIT $2
             FOR UPDATE SKIP LOCKED
           )`,
          "j.*",
        ),
        [kinds, limit, runnerId, leaseMs],
      );
      changed(rows);
      return rows;
    },

    async failExhausted() {
      const { rows } = await db.query<JobRow>(
        recorded(
          `UPDATE jobs SET state = 'FAILED', error_code = 10, ended = now(),
             error_message = 'the runner of attempt ' || attempts || ' of ' || max_attempts
               || ' stopped and its lease expired; no attempts are left (VOXGATE_JOB_MAX_ATTEMPTS)',
             event_seq = event_seq + 1
           WHERE id IN (
             SELECT id FROM jobs
             WHERE state = 'RUNNING' AND lease_expires_at < now() AND attempts >= max_attempts
             FOR UPDATE SKIP LOCKED
           )`,
        ),
      );
      changed(rows);
      return rows.map((r) => r.id);
    },

    async heartbeat(lease, leaseMs) {
      const result = await db.query(
        `UPDATE jobs SET lease_expires_at = now() + $4::float8 ${MS} WHERE ${LEASE_FENCE}`,
        [lease.jobId, lease.runnerId, lease.attempt, leaseMs],
      );
      return result.rowCount === 1;
    },

    async leaseStatus(jobIds) {
      const status = new Map<string, LeaseStatus>();
      if (jobIds.length === 0) return status;
      const { rows } = await db.query<{
        id: string;
        state: JobStateName;
        lease_owner: string | null;
        attempts: number;
      }>("SELECT id, state, lease_owner, attempts FROM jobs WHERE id = ANY($1::text[])", [
        [...jobIds],
      ]);
      for (const r of rows) {
        status.set(r.id, { state: r.state, leaseOwner: r.lease_owner, attempts: r.attempts });
      }
      return status;
    },

    progress(lease, done, total, message) {
      return fenced(lease, "progress_done = $4, progress_total = $5, progress_message = $6", [
        done,
        total,
        message,
      ]);
    },

    complete(lease, output, outputKey) {
      return fenced(
        lease,
        `state = 'SUCCEEDED', output = $4, output_key = $5, ended = now(), error_code = 0,
         error_message = ''`,
        [output, outputKey ?? null],
      );
    },

    fail(lease, code, message) {
      return fenced(lease, "state = 'FAILED', error_code = $4, error_message = $5, ended = now()", [
        code,
        message,
      ]);
    },

    retry(lease, delayMs, code, message, options) {
      // A refunded run (no backend was up) does not use up an attempt; its own counter bounds it.
      const refund = !options?.refundAttempt
        ? ""
        : options.countRefund === false
          ? ", attempts = attempts - 1"
          : ", attempts = attempts - 1, unavailable_retries = unavailable_retries + 1";
      return fenced(
        lease,
        `state = 'QUEUED', run_after = now() + $4::float8 ${MS}, lease_owner = NULL,
         lease_expires_at = NULL, error_code = $5, error_message = $6${refund}`,
        [delayMs, code, message],
      );
    },

    release(lease) {
      return fenced(
        lease,
        `state = 'QUEUED', run_after = now(), lease_owner = NULL, lease_expires_at = NULL,
         attempts = attempts - 1`,
        [],
      );
    },
  };
}
