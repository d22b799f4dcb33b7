import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { migrate } from "./migrate.js";
import { openPgliteDatabase } from "./pglite-database.js";
import type { Migration, SqlDatabase } from "./sql-database.js";

/** Options of {@link createDatabaseProvider}. */
export interface DatabaseProviderOptions {
  /**
   * PostgreSQL URL (`postgres://…`) of a shared server; empty uses embedded PGlite under
   * `dataDir`; `memory:` uses PGlite in memory (tests; gone at exit).
   */
  url: string;
  /** Gateway data directory; embedded PGlite lives in `<dataDir>/db`. */
  dataDir: string;
  /** Most pooled connections to a PostgreSQL server. @default 10 */
  maxConnections?: number;
  /** Schema of every concern that stores rows, applied on open. */
  migrations: readonly Migration[];
  /** Root logger. */
  log: Logger;
}

/**
 * Opens the database once, on first use, and migrates it. Opening is lazy because creating an
 * embedded PGlite database costs seconds that a gateway which never stores anything should not
 * pay; {@link DatabaseProvider.existing} tells a starting gateway whether there is state to resume.
 */
export interface DatabaseProvider {
  /** Opens and migrates on the first call; later calls share the result (or the failure). */
  get(): Promise<SqlDatabase>;
  /**
   * Whether the database may already hold rows: a server URL is configured, or the embedded
   * database directory exists. A gateway opens such a database at start to resume work.
   */
  readonly existing: boolean;
  /** `closed` before the first {@link get}, `opening` until it resolves, then `open` (or `failed`). */
  readonly state: "closed" | "opening" | "open" | "failed";
  /** Closes the database when it was opened; idempotent. */
  close(): Promise<void>;
}

/** Creates the provider; nothing is opened until {@link DatabaseProvider.get}. */
export function createDatabaseProvider(options: DatabaseProviderOptions): DatabaseProvider {
  const log = options.log.child({ component: "database" });
  const embeddedDir = join(options.dataDir, "db");
  const isServer = /^postgres(ql)?:\/\//.test(options.url);
  const isMemory = options.url === "memory:";
  if (options.url && !isServer && !isMemory) {
    throw new Error("database URL must start with postgres:// or postgresql://, or be memory:");
  }
  let opening: Promise<SqlDatabase> | undefined;
  let closing: Promise<void> | undefined;
  let state: DatabaseProvider["state"] = "closed";
  // Stops an embedded open still under way at close: a gateway stopped during its first start
  // exits at once instead of waiting seconds for initdb.
  const abortOpen = new AbortController();

  const open = async (): Promise<SqlDatabase> => {
    const started = performance.now();
    // `pg` is loaded only for a PostgreSQL URL: an embedded gateway never pays for it.
    const db = isServer
      ? await (await import("./postgres-database.js")).openPostgresDatabase({
          url: options.url,
          ...(options.maxConnections ? { maxConnections: options.maxConnections } : {}),
        })
      : await openPgliteDatabase({
          ...(isMemory ? {} : { dataDir: embeddedDir }),
          signal: abortOpen.signal,
        });
    const applied = await migrate(db, options.migrations);
    log.info(
      {
        kind: db.kind,
        ...(isServer ? {} : { dir: isMemory ? "memory" : embeddedDir }),
        migrationsApplied: applied.length,
        ms: Math.round(performance.now() - started),
      },
      "database open",
    );
    return db;
  };

  return {
    existing: isServer || (!isMemory && existsSync(embeddedDir)),
    get state() {
      return state;
    },
    get() {
      if (closing) return Promise.reject(new Error("the database is closed"));
      if (!opening) {
        state = "opening";
        opening = open().then(
          (db) => {
            state = "open";
            return db;
          },
          (err: unknown) => {
            state = "failed";
            throw err;
          },
        );
      }
      return opening;
    },
    close() {
      closing ??= (async () => {
        if (!opening) return;
        if (state === "opening")
          abortOpen.abort(new Error("the gateway closed while opening the database"));
        const db = await opening.catch(() => undefined);
        await db?.close();
      })();
      return closing;
    },
  };
}
