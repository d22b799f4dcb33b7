/**
 * The SQL seam: voices and jobs live in PostgreSQL-dialect tables, served either by embedded PGlite
 * (one process, zero config) or by a real PostgreSQL server (several gateways sharing work).
 *
 * Both adapters return the same JavaScript types so callers never branch on the backend:
 * `int8`/`bigint` as `number`, `timestamptz` as `Date`, `jsonb` as parsed JSON, `bytea` as
 * `Uint8Array`.
 */

/** Rows of one statement. */
export interface SqlResult<R> {
  /** Returned rows (empty for statements without RETURNING). */
  rows: R[];
  /** Rows the statement inserted, updated or deleted (or returned, for SELECT). */
  rowCount: number;
}

/** Runs statements with `$1`-style parameters. */
export interface SqlExecutor {
  /** Runs one statement. Parameters are always bound, never spliced into the text. */
  query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<SqlResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** A database: statements, transactions, and a close. */
export interface SqlDatabase extends SqlExecutor {
  /** Which server answers: embedded PGlite or a PostgreSQL server. */
  readonly kind: "pglite" | "postgres";
  /**
   * Runs `work` in one transaction (READ COMMITTED): committed when it resolves, rolled back when
   * it throws (the error is rethrown). Statements inside must go through `tx`.
   */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Closes connections; idempotent. */
  close(): Promise<void>;
}

/** One forward-only schema change. `id` is namespaced by concern, e.g. `voices/001-create`. */
export interface Migration {
  /** Unique id; applied migrations are recorded by it and never run twice. */
  id: string;
  /** SQL to run (may hold several statements). */
  sql: string;
}
