import { mkdir } from "node:fs/promises";
import { PGlite, types } from "@electric-sql/pglite";
import type { SqlDatabase, SqlExecutor, SqlResult } from "./sql-database.js";

/** Options of {@link openPgliteDatabase}. */
export interface PgliteDatabaseOptions {
  /** Directory of the database files; `undefined` keeps everything in memory (tests). */
  dataDir?: string;
}

// int8 comes back as a string or bigint by default; every count and size we store fits a double.
const parsers = {
  [types.INT8]: (value: string) => Number(value),
};

/**
 * Opens (creating when missing) an embedded PGlite database. The first open of a new directory
 * runs initdb in WASM and takes a few seconds; reopening takes well under one.
 */
export async function openPgliteDatabase(
  options: PgliteDatabaseOptions = {},
): Promise<SqlDatabase> {
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
  const db = await PGlite.create(options.dataDir ?? "memory://", { parsers });
  const run = async <R>(
    executor: Pick<PGlite, "query">,
    sql: string,
    params?: readonly unknown[],
  ): Promise<SqlResult<R>> => {
    const result = await executor.query<R>(sql, params ? [...params] : undefined);
    return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
  };
  let closed: Promise<void> | undefined;
  return {
    kind: "pglite",
    query: (sql, params) => run(db, sql, params),
    async exec(sql) {
      await db.exec(sql);
    },
    async transaction(work) {
      return db.transaction(async (tx) => {
        const executor: SqlExecutor = {
          query: (sql, params) => run(tx, sql, params),
          async exec(sql) {
            await tx.exec(sql);
          },
        };
        return work(executor);
      });
    },
    close() {
      closed ??= db.close();
      return closed;
    },
  };
}
