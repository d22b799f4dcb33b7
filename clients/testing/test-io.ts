/**
 * Test helper: a {@link CliIo} whose stdout and stderr collect what commands write, so CLI tests
 * run `main()` and commands without touching the process's streams. Not part of the client API.
 */
import { Writable } from "node:stream";
import type { CliIo, VoxgateClientFactory } from "../cli/cli-command.js";

/** Options of {@link createTestIo}. */
export interface TestIoOptions {
  /** Environment the command sees. @default {} */
  env?: Record<string, string | undefined> | undefined;
  /** Pretend stdout is a terminal. @default false */
  stdoutIsTTY?: boolean | undefined;
  /** Interrupt signal given to the command. */
  signal?: AbortSignal | undefined;
  /** Client factory given to the command. */
  createClient?: VoxgateClientFactory | undefined;
  /** Called with every chunk written to stdout, e.g. to abort mid-stream. */
  onStdoutWrite?: ((chunk: Buffer) => void) | undefined;
}

/** A {@link CliIo} plus what was written to it. */
export interface TestIo {
  io: CliIo;
  /** Bytes written to stdout so far. */
  stdoutBytes(): Buffer;
  /** Stdout so far as UTF-8. */
  stdout(): string;
  /** Stderr so far as UTF-8. */
  stderr(): string;
}

/** Creates a {@link TestIo}. */
export function createTestIo(options: TestIoOptions = {}): TestIo {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = Object.assign(collector(out, options.onStdoutWrite), {
    isTTY: options.stdoutIsTTY ?? false,
  });
  const io: CliIo = {
    stdout,
    stderr: collector(err),
    env: options.env ?? {},
    signal: options.signal,
    createClient: options.createClient,
  };
  return {
    io,
    stdoutBytes: () => Buffer.concat(out),
    stdout: () => Buffer.concat(out).toString("utf8"),
    stderr: () => Buffer.concat(err).toString("utf8"),
  };
}

function collector(chunks: Buffer[], onWrite?: (chunk: Buffer) => void): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      chunks.push(bytes);
      onWrite?.(bytes);
      callback();
    },
  });
}
