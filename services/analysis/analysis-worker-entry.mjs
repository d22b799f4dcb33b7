// Entry file of the audio-analysis worker threads: plain JavaScript, so that Node starts it the
// same way under tsx, under vitest and once compiled. It loads the implementation named in
// workerData, falling back to tsx's scoped tsImport() when the thread has no TypeScript loader
// (see services/engines/espeak/espeak-worker-entry.mjs for the cases).
import { workerData } from "node:worker_threads";

const { entryUrl } = workerData;
try {
  await import(entryUrl);
} catch (err) {
  const needsTsx =
    err?.code === "ERR_UNKNOWN_FILE_EXTENSION" || err?.code === "ERR_MODULE_NOT_FOUND";
  if (!needsTsx || !entryUrl.endsWith(".ts")) {
    throw err;
  }
  const { tsImport } = await import("tsx/esm/api");
  await tsImport(entryUrl, import.meta.url);
}
