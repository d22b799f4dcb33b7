import type { Migration, SqlDatabase } from "../database/sql-database.js";
import type { UsageKind } from "./token-limits.js";
import { type UsageStore, type UsageTotals, usageKey } from "./usage-store.js";

/** Tables of the shared per-token usage counters. */
export const limitMigrations: readonly Migration[] = [
  {
    id: "limits/001-token-usage",
    sql: `
      CREATE TABLE token_usage (
        token text NOT NULL,
        kind text NOT NULL,
        window_index bigint NOT NULL,
        used bigint NOT NULL,
        PRIMARY KEY (token, kind, window_index)
      );
      CREATE TABLE token_in_flight (
        token text NOT NULL,
        gateway_id text NOT NULL,
        in_flight integer NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (token, gateway_id)
      );
    `,
  },
];

/** Options of {@link createSqlUsageStore}. */
export interface SqlUsageStoreOptions {
  /** The shared database (opened on first flush). */
  database: () => Promise<SqlDatabase>;
  /** Reports of calls in flight older than this are ignored (a gateway that died), in ms. */
  staleAfterMs: number;
}

/**
 * Shares usage through SQL: counters are added with one upsert per (token, kind, window), which
 * returns the new total; calls in flight are one row per (token, gateway), and rows of other
 * gateways not refreshed within `staleAfterMs` are ignored (so a killed replica's calls stop
 * counting). Windows older than two days are deleted now and then.
 */
export function createSqlUsageStore(options: SqlUsageStoreOptions): UsageStore {
  let flushes = 0;
  return {
    async flush(gatewayId, deltas, inFlight) {
      const db = await options.database();
      const totals = new Map<string, number>();
      for (const d of deltas) {
        const result = await db.query<{ used: number }>(
          `INSERT INTO token_usage (token, kind, window_index, used) VALUES ($1, $2, $3, $4)
           ON CONFLICT (token, kind, window_index)
           DO UPDATE SET used = token_usage.used + EXCLUDED.used
           RETURNING used`,
          [d.token, d.kind, d.window, d.delta],
        );
        totals.set(usageKey(d.token, d.kind as UsageKind, d.window), Number(result.rows[0]?.used));
      }
      const othersInFlight = new Map<string, number>();
      if (inFlight.size > 0) {
        for (const [token, count] of inFlight) {
          await db.query(
            `INSERT INTO token_in_flight (token, gateway_id, in_flight, updated_at)
             VALUES ($1, $2, $3, now())
             ON CONFLICT (token, gateway_id)
             DO UPDATE SET in_flight = EXCLUDED.in_flight, updated_at = EXCLUDED.updated_at`,
            [token, gatewayId, count],
          );
        }
        const others = await db.query<{ token: string; in_flight: number }>(
          `SELECT token, SUM(in_flight)::bigint AS in_flight FROM token_in_flight
           WHERE gateway_id <> $1 AND token = ANY($2::text[])
             AND updated_at > now() - ($3::bigint * interval '1 millisecond')
           GROUP BY token`,
          [gatewayId, [...inFlight.keys()], options.staleAfterMs],
        );
        for (const row of others.rows) othersInFlight.set(row.token, Number(row.in_flight));
      }
      if (++flushes % 500 === 1) {
        // Windows are minutes and days: nothing older than two days is read again.
        const dayIndex = Math.floor(Date.now() / 86_400_000);
        await db.query(
          `DELETE FROM token_usage WHERE (kind = 'chars-day' AND window_index < $1)
             OR (kind = 'requests-minute' AND window_index < $2)`,
          [dayIndex - 2, (dayIndex - 2) * 1440],
        );
      }
      return { totals, othersInFlight } satisfies UsageTotals;
    },
  };
}
