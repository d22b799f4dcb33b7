import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { isDatabaseUnavailableError } from "./database-errors.js";
import { migrate } from "./migrate.js";
import { openPgliteDatabase, type PgliteCreation } from "./pglite-database.js";
import type { PostgresPoolSettings } from "./postgres-database.js";
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
  /** Pool size and timeouts of a PostgreSQL server (unused for PGlite). */
  pool: PostgresPoolSettings;
  /** How often an unavailable database is probed until it answers again, in ms. @default 1000 */
  recoveryProbeMs?: number;
  /**
   * Template a new embedded database is copied from (see `openPgliteDatabase`); `false`: none.
   * @default the per-user template in the temporary directory
   */
  pgliteTemplateDir?: string | false;
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
  /**
   * Whether the database answered its last statement (true until something failed). It turns
   * false when a statement or connection fails as unavailable, and true again on the next
   * success; while false, the provider probes the database every `recoveryProbeMs`, so it
   * recovers without traffic (and without a restart).
   */
  readonly available: boolean;
  /** Calls `listener` whenever {@link available} changes; returns the unsubscribe. */
  watch(listener: () => void): () => void;
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
  let available = true;
  let probe: NodeJS.Timeout | undefined;
  const listeners = new Set<() => void>();
  const setAvailable = (now: boolean) => {
    if (now === available) return;
    available = now;
    if (now) {
      clearInterval(probe);
      probe = undefined;
      log.info("database available again");
    } else {
      log.warn("database unavailable; probing until it answers");
      let probing = false;
      probe = setInterval(() => {
        // One probe at a time: a hung server makes each wait for its timeout.
        if (probing) return;
        probing = true;
        void get()
          .then((db) => db.query("SELECT 1"))
          .catch(() => {})
          .finally(() => {
            probing = false;
          });
      }, options.recoveryProbeMs ?? 1000);
      probe.unref();
    }
    for (const listener of listeners) listener();
  };
  /** Runs `work`, recording whether the database answered. */
  const observe = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      const result = await work();
      setAvailable(true);
      return result;
    } catch (err) {
      if (isDatabaseUnavailableError(err)) setAvailable(false);
      throw err;
    }
  };
  /** `db` with every statement observed. */
  const observed = (db: SqlDatabase): SqlDatabase => ({
    kind: db.kind,
    query: (sql, params) => observe(() => db.query(sql, params)),
    exec: (sql) => observe(() => db.exec(sql)),
    transaction: (work) => observe(() => db.transaction(work)),
    close: () => db.close(),
  });
  const get = (): Promise<SqlDatabase> => {
    if (closing) return Promise.reject(new Error("the database is closed"));
    if (!opening) {
      state = "opening";
      opening = observe(open).then(
        (db) => {
          state = "open";
          return observed(db);
        },
        (err: unknown) => {
          state = "failed";
          // A server that is down at first use is tried again by the next call.
          opening = undefined;
          throw err;
        },
      );
    }
    return opening;
  };

  const open = async (): Promise<SqlDatabase> => {
    const started = performance.now();
    let created: PgliteCreation | undefined;
    // `pg` is loaded only for a PostgreSQL URL: an embedded gateway never pays for it.
    const db = isServer
      ? await (await import("./postgres-database.js")).openPostgresDatabase({
          url: options.url,
          pool: options.pool,
        })
      : await openPgliteDatabase(
          {
            ...(isMemory ? {} : { dataDir: embeddedDir }),
            signal: abortOpen.signal,
            ...(options.pgliteTemplateDir !== undefined
              ? { templateDir: options.pgliteTemplateDir }
              : {}),
          },
          (how) => {
            created = how;
          },
        );
    const applied = await migrate(db, options.migrations);
    log.info(
      {
        kind: db.kind,
        ...(isServer ? {} : { dir: isMemory ? "memory" : embeddedDir }),
        // A new embedded database: copied from the template, or made by initdb (seconds).
        ...(created ? { created } : {}),
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
    get,
    get available() {
      return available;
    },
    watch(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      clearInterval(probe);
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
