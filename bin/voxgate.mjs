#!/usr/bin/env node
// The `voxgate` executable: runs the TypeScript CLI through tsx, so there is no build step.
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

// Pin tsx to this repository's tsconfig, whatever the working directory is.
register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", import.meta.url)) });

const { main } = await import("../clients/cli/main.ts");

// The first SIGINT/SIGTERM asks the running command to stop (CliIo.signal) so it can clean up
// (remove a partial file, drain); a second one exits at once.
const interrupt = new AbortController();
const onSignal = (signal) => {
  if (interrupt.signal.aborted) process.exit(signal === "SIGINT" ? 130 : 143);
  interrupt.abort(new Error(`received ${signal}`));
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: interrupt.signal,
});
process.off("SIGINT", onSignal);
process.off("SIGTERM", onSignal);
