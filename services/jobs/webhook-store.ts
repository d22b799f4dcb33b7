import type { SqlDatabase } from "../database/sql-database.js";

/** One pending webhook call as claimed by a sender. */
export interface WebhookDelivery {
  /** Job whose end is reported (one delivery per job). */
  jobId: string;
  /** URL to POST to. */
  url: string;
  /** Calls made so far, this one included. */
  attempt: number;
}

/** SQL access to `webhook_deliveries`: claim due calls under a lease, record how they went. */
export interface WebhookStore {
  /**
   * Claims up to `limit` deliveries that are due and not held by a live sender, for `leaseMs`;
   * each claim counts one attempt.
   */
  claimDue(senderId: string, limit: number, leaseMs: number): Promise<WebhookDelivery[]>;
  /** Records a delivered call. */
  delivered(delivery: WebhookDelivery, senderId: string, status: number): Promise<void>;
  /** Schedules another call after `delayMs`. */
  retry(
    delivery: WebhookDelivery,
    senderId: string,
    delayMs: number,
    status: number,
    error: string,
  ): Promise<void>;
  /** Gives the delivery up for good. */
  giveUp(delivery: WebhookDelivery, senderId: string, status: number, error: string): Promise<void>;
}

const FENCE = "job_id = $1 AND lease_owner = $2 AND attempts = $3";

/** Creates the store over a database migrated with `jobMigrations`. */
export function createWebhookStore(db: SqlDatabase): WebhookStore {
  return {
    async claimDue(senderId, limit, leaseMs) {
      const { rows } = await db.query<{ job_id: string; url: string; attempts: number }>(
        `UPDATE webhook_deliveries d
         SET lease_owner = $1, lease_expires_at = now() + $3::float8 * interval '1 millisecond',
           attempts = d.attempts + 1
         FROM (
           SELECT job_id FROM webhook_deliveries
           WHERE state = 'PENDING' AND next_attempt_at <= now()
             AND (lease_expires_at IS NULL OR lease_expires_at < now())
           ORDER BY next_attempt_at
           LIMIT $2
           FOR UPDATE SKIP LOCKED
         ) due
         WHERE d.job_id = due.job_id
         RETURNING d.job_id, d.url, d.attempts`,
        [senderId, limit, leaseMs],
      );
      return rows.map((r) => ({ jobId: r.job_id, url: r.url, attempt: r.attempts }));
    },
    async delivered(delivery, senderId, status) {
      await db.query(
        `UPDATE webhook_deliveries SET state = 'DELIVERED', delivered = now(), last_status = $4,
           last_error = '', lease_owner = NULL, lease_expires_at = NULL
         WHERE ${FENCE}`,
        [delivery.jobId, senderId, delivery.attempt, status],
      );
    },
    async retry(delivery, senderId, delayMs, status, error) {
      await db.query(
        `UPDATE webhook_deliveries SET last_status = $4, last_error = $5,
           next_attempt_at = now() + $6::float8 * interval '1 millisecond',
           lease_owner = NULL, lease_expires_at = NULL
         WHERE ${FENCE}`,
        [delivery.jobId, senderId, delivery.attempt, status, error, delayMs],
      );
    },
    async giveUp(delivery, senderId, status, error) {
      await db.query(
        `UPDATE webhook_deliveries SET state = 'FAILED', last_status = $4, last_error = $5,
           lease_owner = NULL, lease_expires_at = NULL
         WHERE ${FENCE}`,
        [delivery.jobId, senderId, delivery.attempt, status, error],
      );
    },
  };
}
