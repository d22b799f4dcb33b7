import type { DatabaseProvider } from "../database/database-provider.js";
import type { Migration } from "../database/sql-database.js";

/**
 * Schema of the Cloud job worker: one row per claimed Cloud job, shared by every gateway on the
 * database. The row holds the voxgate render job made for it (so a restarted or another gateway
 * resumes the same render), the progress already reported (so reports only ever grow), and a
 * lease (so one gateway at a time drives it and reports its completion).
 */
export const storyforgeMigrations: readonly Migration[] = [
  {
    id: "storyforge/001-cloud-jobs",
    sql: `
      CREATE TABLE storyforge_cloud_jobs (
        cloud_job_id text PRIMARY KEY,
        story_id text NOT NULL,
        title text NOT NULL DEFAULT '',
        state text NOT NULL DEFAULT 'claimed'
          CHECK (state IN ('claimed', 'rendering', 'done')),
        voxgate_job_id text NOT NULL DEFAULT '',
        total_segments integer NOT NULL DEFAULT 0,
        segments_reported integer NOT NULL DEFAULT 0,
        mp3_url text NOT NULL DEFAULT '',
        outcome text NOT NULL DEFAULT '',
        lease_owner text,
        lease_expires_at timestamptz,
        claimed_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX storyforge_cloud_jobs_open ON storyforge_cloud_jobs (lease_expires_at)
        WHERE state <> 'done';
    `,
  },
];

/** One worker row. */
export interface CloudJobRow {
  cloudJobId: string;
  storyId: string;
  title: string;
  state: "claimed" | "rendering" | "done";
  voxgateJobId: string;
  totalSegments: number;
  segmentsReported: number;
  mp3Url: string;
  outcome: string;
  claimedAt: Date;
}

/** SQL of the worker rows. */
export interface WorkerStore {
  /** Records a claimed job, leased to `owner`; undefined when the row already exists. */
  insert(
    row: { cloudJobId: string; storyId: string; title: string },
    owner: string,
    leaseMs: number,
  ): Promise<CloudJobRow | undefined>;
  /** Renews `owner`'s leases and takes over expired ones; returns the rows `owner` now holds. */
  acquire(owner: string, leaseMs: number): Promise<CloudJobRow[]>;
  /**
   * Extends `owner`'s leases that have not expired (taking over nothing); returns the ids of the
   * rows `owner` still holds. The worker calls it while a pass runs and before it uploads, so a
   * row whose lease lapsed (a stalled process) is left to the gateway that took it over.
   */
  renew(owner: string, leaseMs: number): Promise<Set<string>>;
  /** Records the render job made for a row. */
  setRender(
    cloudJobId: string,
    owner: string,
    voxgateJobId: string,
    total: number,
  ): Promise<boolean>;
  /** Raises the reported progress (never lowers it). */
  setReported(cloudJobId: string, owner: string, done: number): Promise<void>;
  /** Marks a row finished with its outcome, if `owner` still holds it. */
  finish(cloudJobId: string, owner: string, outcome: string, mp3Url: string): Promise<boolean>;
  /** Reads a row. */
  get(cloudJobId: string): Promise<CloudJobRow | undefined>;
}

type Raw = Record<string, unknown>;
const toRow = (r: Raw): CloudJobRow => ({
  cloudJobId: String(r.cloud_job_id),
  storyId: String(r.story_id),
  title: String(r.title),
  state: r.state as CloudJobRow["state"],
  voxgateJobId: String(r.voxgate_job_id),
  totalSegments: Number(r.total_segments),
  segmentsReported: Number(r.segments_reported),
  mp3Url: String(r.mp3_url),
  outcome: String(r.outcome),
  claimedAt: r.claimed_at as Date,
});
const LEASE = "now() + make_interval(secs => $2::double precision / 1000)";

/** Creates the store over the gateway's database. */
export function createWorkerStore(database: DatabaseProvider): WorkerStore {
  const db = () => database.get();
  return {
    async insert(row, owner, leaseMs) {
      const result = await (await db()).query<Raw>(
        `INSERT INTO storyforge_cloud_jobs (cloud_job_id, story_id, title, lease_owner, lease_expires_at)
         VALUES ($3, $4, $5, $1, ${LEASE}) ON CONFLICT (cloud_job_id) DO NOTHING RETURNING *`,
        [owner, leaseMs, row.cloudJobId, row.storyId, row.title],
      );
      return result.rows[0] ? toRow(result.rows[0]) : undefined;
    },
    async acquire(owner, leaseMs) {
      const result = await (await db()).query<Raw>(
        `UPDATE storyforge_cloud_jobs SET lease_owner = $1, lease_expires_at = ${LEASE}, updated_at = now()
         WHERE state <> 'done' AND (lease_owner = $1 OR lease_expires_at IS NULL OR lease_expires_at < now())
         RETURNING *`,
        [owner, leaseMs],
      );
      return result.rows.map(toRow).sort((a, b) => a.claimedAt.getTime() - b.claimedAt.getTime());
    },
    async renew(owner, leaseMs) {
      const result = await (await db()).query<Raw>(
        `UPDATE storyforge_cloud_jobs SET lease_expires_at = ${LEASE}, updated_at = now()
         WHERE state <> 'done' AND lease_owner = $1 AND lease_expires_at > now()
         RETURNING cloud_job_id`,
        [owner, leaseMs],
      );
      return new Set(result.rows.map((r) => String(r.cloud_job_id)));
    },
    async setRender(cloudJobId, owner, voxgateJobId, total) {
      const result = await (await db()).query(
        `UPDATE storyforge_cloud_jobs SET state = 'rendering', voxgate_job_id = $3, total_segments = $4, updated_at = now()
         WHERE cloud_job_id = $1 AND lease_owner = $2 AND state = 'claimed'`,
        [cloudJobId, owner, voxgateJobId, total],
      );
      return result.rowCount > 0;
    },
    async setReported(cloudJobId, owner, done) {
      await (await db()).query(
        `UPDATE storyforge_cloud_jobs SET segments_reported = GREATEST(segments_reported, $3), updated_at = now()
         WHERE cloud_job_id = $1 AND lease_owner = $2`,
        [cloudJobId, owner, done],
      );
    },
    async finish(cloudJobId, owner, outcome, mp3Url) {
      const result = await (await db()).query(
        `UPDATE storyforge_cloud_jobs SET state = 'done', outcome = $3, mp3_url = $4, lease_owner = NULL,
           lease_expires_at = NULL, updated_at = now()
         WHERE cloud_job_id = $1 AND lease_owner = $2 AND state <> 'done'`,
        [cloudJobId, owner, outcome, mp3Url],
      );
      return result.rowCount > 0;
    },
    async get(cloudJobId) {
      const result = await (await db()).query<Raw>(
        "SELECT * FROM storyforge_cloud_jobs WHERE cloud_job_id = $1",
        [cloudJobId],
      );
      return result.rows[0] ? toRow(result.rows[0]) : undefined;
    },
  };
}
