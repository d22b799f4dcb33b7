// Worker thread that owns an embedded PGlite database. PGlite runs PostgreSQL compiled to WASM on
// the thread that calls it, and creating a new database (initdb) keeps that thread busy for seconds
// (tens of seconds on a loaded machine). On the gateway's main thread that would stall every call
// and miss agent keepalives, so the database lives here and the main thread talks to it by
// messages (pglite-database.ts). Plain JavaScript: it needs no TypeScript loader in any setup.
//
// Protocol (main → worker): { id, op: "query", sql, params, tx? } | { id, op: "exec", sql, tx? }
//   | { id, op: "begin" } → reply carries txId | { id, op: "end", tx, commit } | { id, op: "close" }
// Replies (worker → main): { type: "ready" } once open, { type: "failed", error } if opening
// failed, then { id, ok: true, value } or { id, ok: false, error } per request.
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { parentPort, threadId, workerData } from "node:worker_threads";
import { PGlite, types } from "@electric-sql/pglite";

// loadFrom / dumpTo: the in-memory template, a tar of initdb's output (pglite-database.ts).
const { dataDir, loadFrom, dumpTo } = workerData;

/** Copies what callers may branch on (SQLSTATE code, constraint) into a cloneable object. */
function serializeError(err) {
  const e = err ?? {};
  return {
    message: String(e.message ?? e),
    code: e.code,
    detail: e.detail,
    constraint: e.constraint,
    table: e.table,
  };
}

// int8 comes back as a string by default; every count and size we store fits a double.
const parsers = { [types.INT8]: (value) => Number(value) };

/** Writes the fresh database's files as the tar template; a failure only loses the template. */
async function saveTarTemplate(fresh) {
  const staging = `${dumpTo}.${process.pid}.${threadId}`;
  try {
    const tar = await fresh.dumpDataDir("none");
    writeFileSync(staging, new Uint8Array(await tar.arrayBuffer()), { mode: 0o600 });
    // Atomic: a concurrent process sees no template or a whole one.
    renameSync(staging, dumpTo);
  } catch {
    rmSync(staging, { force: true });
  }
}

let db;
try {
  if (loadFrom) {
    try {
      db = await PGlite.create("memory://", {
        parsers,
        loadDataDir: new Blob([readFileSync(loadFrom)]),
      });
    } catch {
      // A template that does not load (truncated, another build): make the database anew.
      db = undefined;
    }
  }
  if (!db) {
    db = await PGlite.create(dataDir ?? "memory://", { parsers });
    // Before any query: the template is initdb's output and nothing else.
    if (dumpTo && !dataDir) await saveTarTemplate(db);
  }
} catch (err) {
  parentPort.postMessage({ type: "failed", error: serializeError(err) });
  process.exit(1);
}

/** Open transactions: txId → queue feeding the callback that holds PGlite's transaction. */
const transactions = new Map();
let nextTxId = 1;

async function run(executor, message) {
  if (message.op === "exec") {
    await executor.exec(message.sql);
    return undefined;
  }
  const result = await executor.query(message.sql, message.params);
  return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
}

function reply(id, promise) {
  promise.then(
    (value) => parentPort.postMessage({ id, ok: true, value }),
    (err) => parentPort.postMessage({ id, ok: false, error: serializeError(err) }),
  );
}

function begin(id) {
  const txId = nextTxId++;
  const inbox = [];
  let wake;
  const next = () =>
    inbox.length > 0 ? Promise.resolve(inbox.shift()) : new Promise((r) => (wake = r));
  transactions.set(txId, {
    push(message) {
      if (wake) {
        const w = wake;
        wake = undefined;
        w(message);
      } else inbox.push(message);
    },
  });
  let endId;
  const done = db
    .transaction(async (tx) => {
      parentPort.postMessage({ id, ok: true, value: txId });
      for (;;) {
        const message = await next();
        if (message.op === "end") {
          endId = message.id;
          if (!message.commit) await tx.rollback();
          return;
        }
        try {
          const value = await run(tx, message);
          parentPort.postMessage({ id: message.id, ok: true, value });
        } catch (err) {
          parentPort.postMessage({ id: message.id, ok: false, error: serializeError(err) });
        }
      }
    })
    .finally(() => transactions.delete(txId));
  done.then(
    () => endId !== undefined && parentPort.postMessage({ id: endId, ok: true }),
    (err) => {
      if (endId !== undefined) {
        parentPort.postMessage({ id: endId, ok: false, error: serializeError(err) });
      } else {
        parentPort.postMessage({ id, ok: false, error: serializeError(err) });
      }
    },
  );
}

parentPort.on("message", (message) => {
  if (message.tx !== undefined) {
    const tx = transactions.get(message.tx);
    if (!tx) {
      parentPort.postMessage({
        id: message.id,
        ok: false,
        error: { message: `transaction ${message.tx} is not open` },
      });
      return;
    }
    tx.push(message);
    return;
  }
  switch (message.op) {
    case "query":
    case "exec":
      reply(message.id, run(db, message));
      return;
    case "begin":
      begin(message.id);
      return;
    case "close":
      reply(message.id, db.close());
      return;
  }
});

parentPort.postMessage({ type: "ready" });
