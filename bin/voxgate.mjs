#!/usr/bin/env node
// The `voxgate` executable. It runs compiled JavaScript when there is some (an installed package,
// or a checkout after `npm run build`) and the TypeScript sources through tsx otherwise, so a
// checkout needs no build step. A checkout's dist/ is used only while it is newer than every
// source file: a stale build never hides an edit. VOXGATE_RUN_SOURCES=1 runs a checkout's sources
// even then (the first-audio benchmark compares the two; the local agent inherits it).
import { getEventListeners } from "node:events";
import { existsSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = new URL(".", import.meta.url);

/** Newest modification time (ms) of the files under `dir`, 0 when it does not exist. */
function newestMtimeMs(dir) {
  let newest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const mtime = statSync(`${entry.parentPath ?? entry.path}/${entry.name}`).mtimeMs;
    if (mtime > newest) newest = mtime;
  }
  return newest;
}

/** Time dist/ was completed (its BUILD file), 0 when there is no complete build. */
function builtAtMs(distDir) {
  try {
    return statSync(new URL("BUILD", distDir)).mtimeMs;
  } catch {
    return 0;
  }
}

async function loadMain() {
  // Inside dist/bin (the installed package, or dist/ of a checkout): the compiled CLI is beside us.
  const compiledHere = new URL("../clients/cli/main.js", here);
  if (builtAtMs(new URL("../", here)) > 0) return import(compiledHere.href);
  // bin/ of the installed package (no sources beside it): its dist/.
  const dist = new URL("../dist/", here);
  const builtAt = builtAtMs(dist);
  const sourceEntry = new URL("../clients/cli/main.ts", here);
  if (!existsSync(sourceEntry)) return import(new URL("clients/cli/main.js", dist).href);
  // bin/ of a checkout: dist/ when it is complete and newer than the sources.
  if (process.env.VOXGATE_RUN_SOURCES === "1") return runSources(sourceEntry);
  const sourceDirs = ["../services", "../clients", "../gen", "../package.json"];
  const sourcesAt = Math.max(
    ...sourceDirs.map((path) => {
      const url = new URL(path, here);
      return path.endsWith(".json") ? statSync(url).mtimeMs : newestMtimeMs(fileURLToPath(url));
    }),
  );
  if (builtAt > sourcesAt) return import(new URL("clients/cli/main.js", dist).href);
  return runSources(sourceEntry);
}

/** Loads the TypeScript entry `sourceEntry` through tsx. */
async function runSources(sourceEntry) {
  const { register } = await import("tsx/esm/api");
  // Pin tsx to this repository's tsconfig, whatever the working directory is.
  register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", here)) });
  return import(sourceEntry.href);
}

const { main } = await loadMain();

// The first SIGINT/SIGTERM asks the running command to stop (CliIo.signal) so it can clean up
// (remove a partial file, drain); a second one exits at once, unless the command listens for it
// (CliIo.hardStop: the gateway cuts its drain short and logs what it cut), which then has 5 s.
const interrupt = new AbortController();
const hardStop = new AbortController();
const onSignal = (signal) => {
  const code = signal === "SIGINT" ? 130 : 143;
  if (interrupt.signal.aborted) {
    if (hardStop.signal.aborted || getEventListeners(hardStop.signal, "abort").length === 0) {
      process.exit(code);
    }
    hardStop.abort(new Error(`received ${signal} again`));
    setTimeout(() => process.exit(code), 5000).unref();
    return;
  }
  interrupt.abort(new Error(`received ${signal}`));
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: interrupt.signal,
  hardStop: hardStop.signal,
});
process.off("SIGINT", onSignal);
process.off("SIGTERM", onSignal);
