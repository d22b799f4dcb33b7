import pg from "pg";
import type { SqlDatabase, SqlExecutor, SqlResult } from "./sql-database.js";

/** Options of {@link openPostgresDatabase}. */
export interface PostgresDatabaseOptions {
  /** Connection URL, e.g. `postgres://voxgate:secret@db.internal:5432/voxgate`. */
  url: string;
  /** Most pooled connections. @default 10 */
  maxConnections?: number;
  /** Time to wait for a connection, in ms. @default 10_000 */
  connectTimeoutMs?: number;
}

const INT8_OID = 20;
// Same JavaScript types as the PGlite adapter: int8 as number (sizes and counts fit a double).
const typeParsers = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as "text");
  },
};

/** Connects a pool to a PostgreSQL server and checks it answers. */
export async function openPostgresDatabase(options: PostgresDatabaseOptions): Promise<SqlDatabase> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    types: typeParsers,
  });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on("error", () => {});
  const run = async <R>(
    executor: pg.Pool | pg.PoolClient,
    sql: string,
    params?: readonly unknown[],
  ): Promise<SqlResult<R>> => {
    const result = await executor.query(sql, params ? [...params] : undefined);
    return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
  };
  await run(pool, "SELECT 1");
  let closed: Promise<void> | undefined;
  return {
    kind: "postgres",
    query: (sql, params) => run(pool, sql, params),
    async exec(sql) {
      await pool.query(sql);
    },
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const executor: SqlExecutor = {
          query: (sql, params) => run(client, sql, params),
          async exec(sql) {
            await client.query(sql);
          },
        };
        const result = await work(executor);
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    close() {
      closed ??= pool.end();
      return closed;
    },
  };
}
