/**
 * Where the shared worker-thread entry file lives, so callers need not know the folder layout.
 */

/**
 * URL of `ts-worker-entry.mjs`, the plain-JavaScript entry of voxgate's worker threads: pass it to
 * `new Worker(url, { workerData: { entryUrl, … } })` and it loads the module at `entryUrl` (a .ts
 * file under tsx, vitest or Node's type stripping, or the compiled .js).
 */
export const TS_WORKER_ENTRY_URL: URL = new URL("./ts-worker-entry.mjs", import.meta.url);
