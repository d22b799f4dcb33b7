// Entry file of voxgate's worker threads (espeak-ng, audio analysis). It is plain JavaScript so
// that Node can start it in any setup, and then loads the implementation named in
// `workerData.entryUrl` (a .ts file, or .js once compiled). A worker inherits a TypeScript loader
// only when its parent got one from the command line (`node --import tsx`, which workers receive
// through execArgv); under vitest, TypeScript is compiled by Vite inside the test runner and a new
// thread has none. In that case the .ts file is loaded with tsx's tsImport(), which is scoped to
// that import and registers nothing globally. Node 22.18+/24 strip types natively, so there the
// plain import finds the .ts file but then fails to resolve its `.js` specifiers
// (ERR_MODULE_NOT_FOUND, at link time, before anything ran): that also falls back to tsx.
import { workerData } from "node:worker_threads";

const { entryUrl } = workerData;
try {
  await import(entryUrl);
} catch (err) {
  // The failed import is not cached under the URL tsImport() uses (it adds a namespace query).
  const needsTsx =
    err?.code === "ERR_UNKNOWN_FILE_EXTENSION" || err?.code === "ERR_MODULE_NOT_FOUND";
  if (!needsTsx || !entryUrl.endsWith(".ts")) {
    throw err;
  }
  const { tsImport } = await import("tsx/esm/api");
  await tsImport(entryUrl, import.meta.url);
}
