/**
 * The `voxgate` command dispatcher: `voxgate <command> [flags]`.
 *
 * `bin/voxgate.mjs` calls {@link main} with the process's arguments and streams; tests call it
 * with their own. It owns what every command shares: `--help`, `--version`, unknown commands, and
 * turning errors into one-line messages and exit codes (2 for usage errors, 1 for failures, 130
 * when interrupted; stack traces only with `VOXGATE_DEBUG=1`).
 */
import { readFile } from "node:fs/promises";
import { inspect } from "node:util";
import type { CliCommand, CliIo } from "./cli-command.js";
import {
  describeError,
  EXIT_FAILURE,
  EXIT_INTERRUPTED,
  EXIT_OK,
  EXIT_USAGE,
  isCliError,
  isCliUsageError,
  isParseArgsError,
} from "./cli-errors.js";
import { commands } from "./commands/index.js";
import { formatTable } from "./format-table.js";

/**
 * Runs `voxgate` with `argv` (the arguments after the program name) and returns the exit code.
 * Never throws and never exits the process; everything goes through `io`.
 *
 * @param registry commands to dispatch to; defaults to {@link commands}.
 */
export async function main(
  argv: readonly string[],
  io: CliIo,
  registry: readonly CliCommand[] = commands,
): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.stderr.write(generalHelp(registry));
    return EXIT_USAGE;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    const topic = first === "help" ? rest[0] : undefined;
    if (topic === undefined) {
      io.stdout.write(generalHelp(registry));
      return EXIT_OK;
    }
    const command = registry.find((c) => c.name === topic);
    if (command === undefined) return unknownCommand(topic, registry, io);
    io.stdout.write(withNewline(command.usage));
    return EXIT_OK;
  }
  if (first === "--version") {
    io.stdout.write(`voxgate ${await readVersion()}\n`);
    return EXIT_OK;
  }
  const command = registry.find((c) => c.name === first);
  if (command === undefined) return unknownCommand(first, registry, io);
  if (asksForHelp(rest)) {
    io.stdout.write(withNewline(command.usage));
    return EXIT_OK;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    return report(error, command, io);
  }
}

/** `--help` or `-h` anywhere before a `--` terminator. */
function asksForHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === "--") return false;
    if (arg === "--help" || arg === "-h") return true;
  }
  return false;
}

function report(error: unknown, command: CliCommand, io: CliIo): number {
  const prefix = `voxgate ${command.name}`;
  const debug = io.env.VOXGATE_DEBUG === "1";
  let exitCode: number;
  if (io.signal?.aborted === true) {
    io.stderr.write(`${prefix}: interrupted\n`);
    exitCode = EXIT_INTERRUPTED;
  } else if (isCliUsageError(error) || isParseArgsError(error)) {
    io.stderr.write(
      `${prefix}: ${error.message}\nRun "voxgate ${command.name} --help" for usage.\n`,
    );
    exitCode = EXIT_USAGE;
  } else {
    const message = isCliError(error) ? error.message : describeError(error);
    io.stderr.write(`${prefix}: ${message}\n`);
    exitCode = EXIT_FAILURE;
  }
  if (debug) io.stderr.write(`${inspect(error, { depth: 6 })}\n`);
  return exitCode;
}

function unknownCommand(name: string, registry: readonly CliCommand[], io: CliIo): number {
  const what = name.startsWith("-") ? `unknown flag "${name}"` : `unknown command "${name}"`;
  io.stderr.write(`voxgate: ${what}\n\n${commandList(registry)}`);
  io.stderr.write('\nRun "voxgate --help" for usage.\n');
  return EXIT_USAGE;
}

function generalHelp(registry: readonly CliCommand[]): string {
  return `voxgate: a typed RPC gateway for text-to-speech

Usage: voxgate <command> [flags]

${commandList(registry)}
Run "voxgate <command> --help" for a command's flags; "voxgate --version" prints the version.

Environment:
  VOXGATE_URL    gateway URL for client commands (default http://127.0.0.1:8080)
  VOXGATE_TOKEN  bearer token for client commands
  VOXGATE_DEBUG  set to 1 to print full errors with stack traces
`;
}

function commandList(registry: readonly CliCommand[]): string {
  const table = formatTable(
    ["", ""],
    registry.map((c) => [c.name, c.summary]),
    { maxCellWidth: 80 },
  );
  // Drop the empty header line; indent the rows.
  const rows = table.split("\n").slice(1, -1);
  return `Commands:\n${rows.map((row) => `  ${row}\n`).join("")}`;
}

async function readVersion(): Promise<string> {
  const text = await readFile(new URL("../../package.json", import.meta.url), "utf8");
  const { version } = JSON.parse(text) as { version?: unknown };
  return typeof version === "string" ? version : "unknown";
}

function withNewline(text: string): string {
  return text.endsWith("\n") ? text : `${text}\n`;
}
