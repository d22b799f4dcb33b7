import { existsSync, readFileSync } from "node:fs";
import { cp, lstat, mkdir, rename, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Worker } from "node:worker_threads";
import type { SqlDatabase, SqlExecutor, SqlResult } from "./sql-database.js";

/** Options of {@link openPgliteDatabase}. */
export interface PgliteDatabaseOptions {
  /** Directory of the database files; `undefined` keeps everything in memory (tests). */
  dataDir?: string;
  /** Stops an open still under way: the worker is terminated and the open rejects. */
  signal?: AbortSignal;
  /**
   * Directory of a fresh, empty database (PGlite's initdb output) that a new database is copied
   * from instead of running initdb again; made by the first new database when missing. An
   * in-memory database loads the same template as a tar file beside it (`<templateDir>.tar`),
   * made by the first in-memory database. `false`: none. Only a directory or file owned by this
   * user and writable by nobody else is used.
   * @default {@link defaultPgliteTemplateDir}
   */
  templateDir?: string | false;
}

/** How {@link openPgliteDatabase} made a new database. */
export type PgliteCreation = "initdb" | "template";

/**
 * The per-user template directory of the installed PGlite version, in the system's temporary
 * directory (initdb output depends on PGlite's build; a new version gets a new template), or
 * undefined where there are no user ids.
 */
export function defaultPgliteTemplateDir(): string | undefined {
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  return join(tmpdir(), `voxgate-pglite-template-${uid}-${pgliteVersion()}`);
}

/** Version of the installed `@electric-sql/pglite` (its package.json is not exported). */
function pgliteVersion(): string {
  let dir = dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "@electric-sql/pglite") return pkg.version ?? "unknown";
    } catch {
      // Not here: look in the parent.
    }
    const parent = dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
}

/**
 * Whether `dir` may serve as a PGlite template: a real directory (not a symbolic link) owned by
 * this user, writable by nobody else, holding a database (`PG_VERSION`). The temporary directory
 * is shared: a template another user planted there is never copied.
 */
export async function isTrustedPgliteTemplate(dir: string): Promise<boolean> {
  const stat = await lstat(dir).catch(() => undefined);
  return (
    stat?.isDirectory() === true &&
    stat.uid === process.getuid?.() &&
    (stat.mode & 0o022) === 0 &&
    existsSync(join(dir, "PG_VERSION"))
  );
}

/**
 * Whether `file` may serve as the in-memory template (a tar of initdb's output): a regular file
 * (not a link) owned by this user and writable by nobody else.
 */
export async function isTrustedPgliteTemplateTar(file: string): Promise<boolean> {
  const stat = await lstat(file).catch(() => undefined);
  return (
    stat?.isFile() === true &&
    stat.uid === process.getuid?.() &&
    (stat.mode & 0o022) === 0 &&
    stat.size > 0
  );
}

/** Keeps a copy of the fresh database `from` as the template `dir`; a failure only loses the copy. */
async function saveTemplate(from: string, dir: string): Promise<void> {
  const staging = `${dir}.${process.pid}.${Date.now()}`;
  try {
    await mkdir(staging, { mode: 0o700 });
    await cp(from, staging, { recursive: true });
    // Atomic: a concurrent process sees no template or a whole one; the loser drops its copy.
    await rename(staging, dir);
  } catch {
    await rm(staging, { recursive: true, force: true }).catch(() => {});
  }
}

/** A PostgreSQL error as PGlite reported it; `code` is the SQLSTATE (e.g. `23505`). */
export class PgliteError extends Error {
  override name = "PgliteError";
  /** SQLSTATE code, when PostgreSQL gave one. */
  readonly code: string | undefined;
  /** PostgreSQL's detail line. */
  readonly detail: string | undefined;
  /** Constraint that was violated, if any. */
  readonly constraint: string | undefined;

  /** Rebuilds the error from what the worker sent. */
  constructor(fields: { message: string; code?: string; detail?: string; constraint?: string }) {
    super(fields.message);
    this.code = fields.code;
    this.detail = fields.detail;
    this.constraint = fields.constraint;
  }
}

type Reply = {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: ConstructorParameters<typeof PgliteError>[0];
};

/**
 * Opens (creating when missing) an embedded PGlite database in a worker thread. A new directory is
 * copied from the template (`templateDir`) when there is one, in well under a second; otherwise
 * initdb runs in WASM (4-5 s of CPU, tens of seconds on a loaded machine) and its output becomes
 * the template. Reopening takes well under one. The worker keeps that work, and every query, off
 * the caller's event loop. `onCreated` says how a new database was made.
 */
export async function openPgliteDatabase(
  options: PgliteDatabaseOptions = {},
  onCreated?: (how: PgliteCreation) => void,
): Promise<SqlDatabase> {
  const { dataDir, signal } = options;
  const templateDir =
    options.templateDir === false ? undefined : (options.templateDir ?? defaultPgliteTemplateDir());
  if (!dataDir) {
    // In memory (tests, throwaway gateways): load initdb's output from the tar template (0.6 s
    // against 4-6 s of initdb), or run initdb and leave the tar for the next one.
    const tar = templateDir && `${templateDir}.tar`;
    if (!tar) return startWorker(undefined, signal);
    if (await isTrustedPgliteTemplateTar(tar)) {
      const db = await startWorker(undefined, signal, { loadFrom: tar });
      onCreated?.("template");
      return db;
    }
    const db = await startWorker(undefined, signal, { dumpTo: tar });
    onCreated?.("initdb");
    return db;
  }
  if (existsSync(dataDir)) return startWorker(dataDir, signal);
  // A new database is created beside its final place and moved there once whole (closed first,
  // then reopened, well under a second), so a process stopped or killed during initdb never
  // leaves a half-made database that the next start would take for an existing one.
  const partial = `${dataDir}.partial`;
  await rm(partial, { recursive: true, force: true });
  let how: PgliteCreation = "initdb";
  try {
    if (templateDir && (await isTrustedPgliteTemplate(templateDir))) {
      await cp(templateDir, partial, { recursive: true });
      how = "template";
    } else {
      await mkdir(partial, { recursive: true });
      await (await startWorker(partial, signal)).close();
      if (templateDir) await saveTemplate(partial, templateDir);
    }
    signal?.throwIfAborted();
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
  await rename(partial, dataDir);
  onCreated?.(how);
  return startWorker(dataDir, signal);
}

/** What an in-memory database does with the tar template (pglite-worker.mjs reads both). */
interface MemoryTemplate {
  /** Load initdb's output from this tar instead of running initdb. */
  loadFrom?: string;
  /** After initdb, write its output here as a tar (atomically; a failure only loses it). */
  dumpTo?: string;
}

async function startWorker(
  dataDir: string | undefined,
  signal: AbortSignal | undefined,
  memoryTemplate: MemoryTemplate = {},
): Promise<SqlDatabase> {
  signal?.throwIfAborted();
  const worker = new Worker(new URL("./pglite-worker.mjs", import.meta.url), {
    workerData: { dataDir, ...memoryTemplate },
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  let nextId = 1;
  let failure: Error | undefined;

  const onAbort = () => void worker.terminate();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { type?: string; error?: { message: string } }) => {
        if (message.type === "ready") {
          worker.off("error", onError);
          worker.off("exit", onExit);
          resolve();
        } else if (message.type === "failed") {
          reject(new PgliteError(message.error ?? { message: "PGlite failed to open" }));
        }
      };
      const onError = (err: Error) => reject(err);
      const onExit = () =>
        reject(
          signal?.aborted ? signal.reason : new Error("the PGlite worker exited while opening"),
        );
      worker.once("message", onMessage);
      worker.once("error", onError);
      worker.once("exit", onExit);
    });
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }

  worker.on("message", (reply: Reply) => {
    const waiter = pending.get(reply.id);
    if (!waiter) return;
    pending.delete(reply.id);
    if (reply.ok) waiter.resolve(reply.value);
    else waiter.reject(new PgliteError(reply.error ?? { message: "PGlite request failed" }));
  });
  const failAll = (err: Error) => {
    failure = err;
    for (const waiter of pending.values()) waiter.reject(err);
    pending.clear();
  };
  worker.on("error", failAll);
  worker.on("exit", (code) => failAll(new Error(`the PGlite worker exited (code ${code})`)));

  const request = <T>(message: Record<string, unknown>): Promise<T> => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ ...message, id });
    });
  };
  const executor = (tx?: number): SqlExecutor => ({
    query: <R>(sql: string, params?: readonly unknown[]) =>
      request<SqlResult<R>>({ op: "query", sql, params: params ? [...params] : undefined, tx }),
    async exec(sql) {
      await request({ op: "exec", sql, tx });
    },
  });

  let closed: Promise<void> | undefined;
  return {
    kind: "pglite",
    ...executor(),
    async transaction(work) {
      const tx = await request<number>({ op: "begin" });
      let result: Awaited<ReturnType<typeof work>>;
      try {
        result = await work(executor(tx));
      } catch (err) {
        await request({ op: "end", tx, commit: false }).catch(() => {});
        throw err;
      }
      await request({ op: "end", tx, commit: true });
      return result;
    },
    close() {
      closed ??= (async () => {
        if (!failure) await request({ op: "close" }).catch(() => {});
        await worker.terminate();
      })();
      return closed;
    },
  };
}
