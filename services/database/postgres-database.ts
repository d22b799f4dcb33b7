import pg from "pg";
import { DatabaseUnavailableError, unavailableReason } from "./database-errors.js";
import type { SqlDatabase, SqlExecutor, SqlResult } from "./sql-database.js";

/** The gateway settings of a PostgreSQL server's pool, by setting name (README: Settings). */
export interface PostgresPoolSettings {
  /** Most pooled connections. */
  databaseMaxConnections: number;
  /** Time to wait for a connection (pooled or new), in ms. */
  databaseConnectTimeoutMs: number;
  /**
   * Longest statement, in ms: the server cancels it (`statement_timeout`) and the client stops
   * waiting (`query_timeout`, for a server that hangs and cancels nothing).
   */
  databaseStatementTimeoutMs: number;
}

/** Options of {@link openPostgresDatabase}. */
export interface PostgresDatabaseOptions {
  /** Connection URL, e.g. `postgres://voxgate:secret@db.internal:5432/voxgate`. */
  url: string;
  /** Pool size and timeouts. */
  pool: PostgresPoolSettings;
}

const INT8_OID = 20;
// Same JavaScript types as the PGlite adapter: int8 as number (sizes and counts fit a double).
const typeParsers = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as "text");
  },
};

/**
 * Connects a pool to a PostgreSQL server and checks it answers. Every statement and connection
 * attempt is bounded by the timeouts; a failure that a retry may fix (refused or lost connection,
 * timeout, server shutting down) rejects with {@link DatabaseUnavailableError}, whose message
 * never carries the server's address; a connection that failed so is dropped from the pool, so a
 * restarted or resumed server is used again without restarting the gateway.
 *
 * @throws DatabaseUnavailableError when the server does not answer.
 */
export async function openPostgresDatabase(options: PostgresDatabaseOptions): Promise<SqlDatabase> {
  const timeouts = {
    statementMs: options.pool.databaseStatementTimeoutMs,
    connectMs: options.pool.databaseConnectTimeoutMs,
  };
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.pool.databaseMaxConnections,
    connectionTimeoutMillis: timeouts.connectMs,
    statement_timeout: timeouts.statementMs,
    // The server cannot cancel anything while it hangs (SIGSTOP, a dead host): stop waiting a
    // little after it should have.
    query_timeout: timeouts.statementMs + 500,
    types: typeParsers,
  });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on("error", () => {});
  const translate = (err: unknown): unknown => {
    const reason = unavailableReason(err, timeouts);
    return reason
      ? new DatabaseUnavailableError(`the database is unavailable (${reason}); retry later`, {
          cause: err,
        })
      : err;
  };
  const run = async <R>(
    executor: pg.Pool | pg.PoolClient,
    sql: string,
    params?: readonly unknown[],
  ): Promise<SqlResult<R>> => {
    try {
      const result = await executor.query(sql, params ? [...params] : undefined);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
    } catch (err) {
      throw translate(err);
    }
  };
  /** Runs a script (several statements, no parameters; `pg` answers an array of results). */
  const script = async (executor: pg.Pool | pg.PoolClient, sql: string): Promise<void> => {
    try {
      await executor.query(sql);
    } catch (err) {
      throw translate(err);
    }
  };
  try {
    await run(pool, "SELECT 1");
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  let closed: Promise<void> | undefined;
  return {
    kind: "postgres",
    query: (sql, params) => run(pool, sql, params),
    exec: (sql) => script(pool, sql),
    async transaction(work) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw translate(err);
      }
      let broken: Error | undefined;
      try {
        await run(client, "BEGIN");
        const executor: SqlExecutor = {
          query: (sql, params) => run(client, sql, params),
          exec: (sql) => script(client, sql),
        };
        const result = await work(executor);
        await run(client, "COMMIT");
        return result;
      } catch (err) {
        if (err instanceof DatabaseUnavailableError) {
          // The connection may still wait on the hung statement: never hand it out again.
          broken = err;
        } else {
          await client.query("ROLLBACK").catch((e: unknown) => {
            broken = e as Error;
          });
        }
        throw err;
      } finally {
        client.release(broken);
      }
    },
    close() {
      closed ??= pool.end();
      return closed;
    },
  };
}
