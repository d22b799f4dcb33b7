// Entry file of the espeak-ng worker threads. It is plain JavaScript so that Node can start it in
// any setup, and then loads the implementation named in workerData (espeak-worker.ts, or .js once
// compiled). A worker inherits a TypeScript loader only when its parent got one from the command
// line (`node --import tsx`, which workers receive through execArgv); under vitest, TypeScript is
// compiled by Vite inside the test runner and a new thread has none. In that case the .ts file is
// loaded with tsx's tsImport(), which is scoped to that import and registers nothing globally.
import { workerData } from "node:worker_threads";

const { entryUrl } = workerData;
try {
  await import(entryUrl);
} catch (err) {
  // The failed import is not cached under the URL tsImport() uses (it adds a namespace query).
  if (err?.code !== "ERR_UNKNOWN_FILE_EXTENSION" || !entryUrl.endsWith(".ts")) {
    throw err;
  }
  const { tsImport } = await import("tsx/esm/api");
  await tsImport(entryUrl, import.meta.url);
}
