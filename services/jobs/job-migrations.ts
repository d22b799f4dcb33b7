import type { Migration } from "../database/sql-database.js";

/**
 * Schema of durable jobs: the `jobs` rows (spec, state, lease, progress, result), their ordered
 * change history (`job_events`, read by watchers on any gateway) and pending webhook calls
 * (`webhook_deliveries`, so a restart still delivers). PostgreSQL dialect; the same SQL runs on
 * PGlite and on a PostgreSQL server.
 */
export const jobMigrations: readonly Migration[] = [
  {
    id: "jobs/001-create",
    sql: `
      CREATE TABLE jobs (
        id text PRIMARY KEY,
        kind text NOT NULL,
        spec jsonb NOT NULL,
        state text NOT NULL DEFAULT 'QUEUED'
          CHECK (state IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
        owner text NOT NULL,
        owner_scopes jsonb NOT NULL DEFAULT '[]',
        request_id text NOT NULL DEFAULT '',
        attempts integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL,
        unavailable_retries integer NOT NULL DEFAULT 0,
        run_after timestamptz NOT NULL DEFAULT now(),
        lease_owner text,
        lease_expires_at timestamptz,
        progress_done integer NOT NULL DEFAULT 0,
        progress_total integer NOT NULL DEFAULT 0,
        progress_message text NOT NULL DEFAULT '',
        error_code integer NOT NULL DEFAULT 0,
        error_message text NOT NULL DEFAULT '',
        output jsonb,
        output_key text,
        webhook_url text NOT NULL DEFAULT '',
        labels jsonb NOT NULL DEFAULT '{}',
        cancel_requested boolean NOT NULL DEFAULT false,
        event_seq integer NOT NULL DEFAULT 1,
        created timestamptz NOT NULL DEFAULT now(),
        started timestamptz,
        ended timestamptz
      );
      CREATE UNIQUE INDEX jobs_owner_request ON jobs (owner, request_id) WHERE request_id <> '';
      CREATE INDEX jobs_queued ON jobs (run_after) WHERE state = 'QUEUED';
      CREATE INDEX jobs_running ON jobs (lease_expires_at) WHERE state = 'RUNNING';
      CREATE INDEX jobs_owner_created ON jobs (owner, created DESC, id DESC);
      CREATE INDEX jobs_created ON jobs (created DESC, id DESC);

      CREATE TABLE job_events (
        job_id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq integer NOT NULL,
        event jsonb NOT NULL,
        created timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (job_id, seq)
      );

      CREATE TABLE webhook_deliveries (
        job_id text PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
        url text NOT NULL,
        state text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        lease_owner text,
        lease_expires_at timestamptz,
        last_status integer NOT NULL DEFAULT 0,
        last_error text NOT NULL DEFAULT '',
        created timestamptz NOT NULL DEFAULT now(),
        delivered timestamptz
      );
      CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
        WHERE state = 'PENDING';
    `,
  },
];
