/**
 * The shape of a `voxgate` CLI command and of the I/O it is given, so commands run the same from
 * `bin/voxgate.mjs` and from tests, without touching process globals.
 */
import type { Writable } from "node:stream";
import type { VoxgateClient, VoxgateClientOptions } from "../voxgate-client.js";

/** Creates the typed client a command talks to the gateway with. */
export type VoxgateClientFactory = (options: VoxgateClientOptions) => VoxgateClient;

/** Where a command reads its environment and writes its output. */
export interface CliIo {
  /**
   * Data output: tables, JSON, audio with `-o -`. `isTTY` (as on `process.stdout`) tells whether a
   * person is reading, e.g. so `speak` refuses to dump binary audio onto a terminal.
   */
  stdout: Writable & { readonly isTTY?: boolean };
  /** Messages for people: progress, summaries, errors. */
  stderr: Writable;
  /** Environment variables (`VOXGATE_URL`, `VOXGATE_TOKEN`, `VOXGATE_DEBUG`, …). */
  env: Readonly<Record<string, string | undefined>>;
  /**
   * Aborted when the user asks the process to stop (first SIGINT/SIGTERM in `bin/voxgate.mjs`).
   * Commands stop their work, clean up and return; long-running commands shut down gracefully.
   * @default never aborted
   */
  signal?: AbortSignal | undefined;
  /**
   * Aborted by a second SIGINT/SIGTERM, for a command that listens for it (a gateway cuts its
   * drain short and logs what it cut); without a listener the process exits at once.
   * @default never aborted
   */
  hardStop?: AbortSignal | undefined;
  /**
   * Makes the client of commands that call the gateway; tests pass one bound to an in-memory or
   * local transport.
   * @default createVoxgateClient
   */
  createClient?: VoxgateClientFactory | undefined;
}

/**
 * A `voxgate <name>` command. The dispatcher (`main.ts`) answers `--help`/`-h` with {@link usage}
 * before calling {@link run}, and turns thrown errors into messages and exit codes: a
 * `CliUsageError` (or a `util.parseArgs` error) exits 2, anything else 1.
 */
export interface CliCommand {
  /** Word after `voxgate`, e.g. `speak`; lowercase, unique in the registry. */
  name: string;
  /** One line for `voxgate --help`, e.g. "Speak text and save or stream the audio". */
  summary: string;
  /** Full help text printed by `voxgate <name> --help`: synopsis, flags, examples. */
  usage: string;
  /**
   * Runs the command with the arguments after its name and returns the process exit code: 0 on
   * success, 1 on failure, 2 on a usage error, 130 when stopped by {@link CliIo.signal}.
   */
  run(argv: string[], io: CliIo): Promise<number>;
}
