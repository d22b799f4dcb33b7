/** `voxgate speak`: synthesizes text and writes the audio to a file or stdout as it arrives. */
import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import type { HttpBody } from "../../../gen/google/api/httpbody_pb.js";
import { AudioEncoding } from "../../../gen/voxgate/v1/audio_pb.js";
import { parseWav, wavDurationMs } from "../../../services/audio/index.js";
import type { CliCommand, CliIo } from "../cli-command.js";
import { CliError, CliUsageError, EXIT_OK } from "../cli-errors.js";
import {
  callOptions,
  GATEWAY_FLAGS,
  GATEWAY_FLAGS_HELP,
  resolveGatewayOptions,
  withGatewayClient,
} from "../gateway-flags.js";
import { parseChoiceFlag, parseFlags, parseNumberFlag } from "../parse-flags.js";
import { patchWavFileSizes } from "../wav-file.js";

/** Response header naming the backend that served a call. */
export const BACKEND_HEADER = "x-voxgate-backend";
/** Response header counting the backends tried for a call (1 without failover). */
export const ATTEMPTS_HEADER = "x-voxgate-attempts";

/** Gateway encoding of each --format value. */
const ENCODINGS = {
  wav: AudioEncoding.WAV,
  pcm: AudioEncoding.PCM,
  mp3: AudioEncoding.MP3,
} as const;

const usage = `Usage: voxgate speak TEXT [-o FILE|-] [--voice ID] [--format wav|pcm|mp3] [--speed N]
                     [--engine ID] [--stream|--no-stream] [gateway flags]

Speaks TEXT (several words are joined with spaces) and writes the audio as it arrives.
Needs the "tts" scope.

Flags:
  -o, --output FILE  file to write; "-" for stdout. Without -o the audio goes to stdout,
                     unless stdout is a terminal.
  --voice ID         voice from "voxgate voices" (default: the engine's default voice)
  --format NAME      wav, mp3, or pcm for raw signed 16-bit little-endian samples (default wav)
  --speed N          rate multiplier from 0.25 to 4 (default 1)
  --engine ID        only backends hosting this engine, e.g. espeak-ng
  --stream           stream audio while it is synthesized (TtsService.StreamSynthesize; default)
  --no-stream        get the whole clip in one response (TtsService.Synthesize)

A streamed WAV starts with "unknown length" sizes; in a file they are set once the last byte is
written. The file appears only when the audio is complete: a failed call leaves none behind.
A summary goes to stderr: bytes, duration, the backend that served the call, time to first
byte and total time.

${GATEWAY_FLAGS_HELP}

Examples:
  voxgate speak "Hello there" -o hello.wav
  voxgate speak "Hello there" --voice en-us | aplay
  voxgate speak "Hallo" --voice de --format pcm -o - | play -t raw -r 22050 -e signed -b 16 -c 1 -
`;

/** How many leading bytes are kept to read the WAV header for the summary. */
const HEAD_BYTES = 1024;

/** `voxgate speak`. */
export const speakCommand: CliCommand = {
  name: "speak",
  summary: "Speak text into a WAV/PCM file or stdout",
  usage,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseFlags({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        ...GATEWAY_FLAGS,
        output: { type: "string", short: "o" },
        voice: { type: "string", default: "" },
        format: { type: "string", default: "wav" },
        speed: { type: "string" },
        engine: { type: "string", default: "" },
        stream: { type: "boolean", default: false },
        "no-stream": { type: "boolean", default: false },
      },
    });
    const text = positionals.join(" ");
    if (text.trim() === "") {
      throw new CliUsageError(
        'give the text to speak, e.g. voxgate speak "Hello there" -o hello.wav',
      );
    }
    const format = parseChoiceFlag("format", values.format, ["wav", "pcm", "mp3"]);
    const speed = values.speed === undefined ? 0 : parseNumberFlag("speed", values.speed, 0.25, 4);
    if (values.stream && values["no-stream"]) {
      throw new CliUsageError("--stream and --no-stream contradict each other: pass one");
    }
    const streaming = !values["no-stream"];
    if (values.output === undefined && io.stdout.isTTY === true) {
      throw new CliUsageError(
        "refusing to write audio to a terminal: pass -o FILE (e.g. -o speech.wav), or -o - to write to stdout anyway",
      );
    }
    const options = resolveGatewayOptions(values, io.env);
    const request = {
      text,
      voice: values.voice,
      engine: values.engine,
      speed,
      encoding: ENCODINGS[format],
    };

    const output = values.output ?? "-";
    // Open the destination before calling, so an unwritable path costs no synthesis.
    const sink = output === "-" ? createStreamSink(io.stdout) : await openFileSink(output);
    const result = await withGatewayClient(io, options, "tts", async (client) => {
      const started = performance.now();
      const received: Received = { bytes: 0, head: new Uint8Array(0), contentType: "" };
      const call = {
        ...callOptions(io),
        onHeader(headers: Headers): void {
          received.backend = headers.get(BACKEND_HEADER) ?? undefined;
          received.attempts = headers.get(ATTEMPTS_HEADER) ?? undefined;
        },
      };
      try {
        const bodies: AsyncIterable<HttpBody> = streaming
          ? client.tts.streamSynthesize(request, call)
          : single(await client.tts.synthesize(request, call));
        for await (const body of bodies) {
          if (received.contentType === "") received.contentType = body.contentType;
          if (body.data.length === 0) continue;
          received.firstByteMs ??= performance.now() - started;
          if (received.head.length < HEAD_BYTES) {
            received.head = concat(
              received.head,
              body.data.subarray(0, HEAD_BYTES - received.head.length),
            );
          }
          received.bytes += body.data.length;
          await sink.write(body.data);
        }
        if (received.bytes === 0) throw new CliError("the gateway returned no audio");
        const note = await sink.finish(format === "wav");
        if (note !== undefined) io.stderr.write(`note: ${note}\n`);
      } catch (error) {
        await sink.abort();
        throw error;
      }
      return { ...received, totalMs: performance.now() - started };
    });
    io.stderr.write(`${summarize(sink.name, result)}\n`);
    return EXIT_OK;
  },
};

/** What arrived from the gateway. */
interface Received {
  bytes: number;
  /** First bytes of the audio, for the WAV header. */
  head: Uint8Array;
  contentType: string;
  backend?: string | undefined;
  attempts?: string | undefined;
  firstByteMs?: number | undefined;
}

/** One line for stderr, e.g. "wrote hello.wav: 88,244 bytes, 2.00 s of audio (22050 Hz mono), …". */
function summarize(name: string, received: Received & { totalMs: number }): string {
  const parts = [`wrote ${name}: ${received.bytes.toLocaleString("en-US")} bytes`];
  const audio = describeAudio(received);
  if (audio !== undefined) parts.push(audio);
  if (received.backend !== undefined) {
    const attempts = Number(received.attempts);
    parts.push(`backend ${received.backend}${attempts > 1 ? ` (after ${attempts} attempts)` : ""}`);
  }
  if (received.firstByteMs !== undefined) {
    parts.push(`first byte after ${Math.round(received.firstByteMs)} ms`);
  }
  parts.push(`total ${Math.round(received.totalMs)} ms`);
  return parts.join(", ");
}

/** "2.00 s of audio (22050 Hz mono)" from the WAV header or the L16 content type. */
function describeAudio(received: Received): string | undefined {
  let layout: { sampleRateHz: number; channels: number; bitsPerSample: number; dataBytes: number };
  if (String.fromCharCode(...received.head.subarray(0, 4)) === "RIFF") {
    try {
      const info = parseWav(received.head);
      layout = { ...info, dataBytes: received.bytes - info.dataOffset };
    } catch {
      return undefined;
    }
  } else {
    const l16 = parseL16ContentType(received.contentType);
    if (l16 === undefined) return undefined;
    layout = { ...l16, bitsPerSample: 16, dataBytes: received.bytes };
  }
  const seconds = (wavDurationMs(layout) / 1000).toFixed(2);
  const channels = layout.channels === 1 ? "mono" : `${layout.channels} channels`;
  return `${seconds} s of audio (${layout.sampleRateHz} Hz ${channels})`;
}

/** Reads rate and channels from `audio/L16; rate=22050; channels=1` (RFC 2586). */
function parseL16ContentType(
  contentType: string,
): { sampleRateHz: number; channels: number } | undefined {
  const [type = "", ...params] = contentType.split(";").map((part) => part.trim());
  if (type.toLowerCase() !== "audio/l16") return undefined;
  const param = (name: string): number | undefined => {
    const found = params.find((p) => p.toLowerCase().startsWith(`${name}=`));
    const value = Number(found?.slice(name.length + 1));
    return Number.isInteger(value) && value > 0 ? value : undefined;
  };
  const sampleRateHz = param("rate");
  if (sampleRateHz === undefined) return undefined;
  return { sampleRateHz, channels: param("channels") ?? 1 };
}

/** Where the audio goes. */
interface AudioSink {
  /** "stdout" or the file path, for messages. */
  readonly name: string;
  /** Writes a chunk, waiting until the destination takes it (backpressure). */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Completes the output (for a file: close, fix WAV sizes when `wav`, move into place). Returns
   * a note for people when something was left undone.
   */
  finish(wav: boolean): Promise<string | undefined>;
  /** Gives up: a file in progress is removed. Never throws. */
  abort(): Promise<void>;
}

/** A sink writing to a stream such as stdout, which it never ends. */
function createStreamSink(stream: Writable): AudioSink {
  let failure: Error | undefined;
  // Without a listener an EPIPE (reader went away) would crash the process.
  const onError = (error: Error): void => {
    failure ??= error;
  };
  stream.on("error", onError);
  const fail = (error: unknown): CliError =>
    new CliError(`stdout closed before the audio ended (${describeFsError(error)})`, {
      cause: error,
    });
  return {
    name: "stdout",
    async write(chunk) {
      if (failure !== undefined) throw fail(failure);
      try {
        await new Promise<void>((resolve, reject) => {
          stream.write(chunk, (error) => (error ? reject(error) : resolve()));
        });
      } catch (error) {
        throw fail(error);
      }
    },
    async finish() {
      stream.off("error", onError);
      return undefined;
    },
    async abort() {
      stream.off("error", onError);
    },
  };
}

/**
 * A sink writing to the file at `path`. A regular file (or a new one) is written under a temporary
 * name next to it and renamed on success, so a failed call never leaves a truncated file that
 * looks complete; anything else (`/dev/null`, a FIFO) is written in place.
 */
async function openFileSink(path: string): Promise<AudioSink> {
  const fail = (error: unknown): CliError =>
    new CliError(`cannot write ${path}: ${describeFsError(error)}`, { cause: error });
  let regular = true;
  try {
    const stats = await stat(path);
    if (stats.isDirectory()) throw new CliError(`cannot write ${path}: it is a directory`);
    regular = stats.isFile();
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error instanceof CliError ? error : fail(error);
  }
  const target = regular
    ? join(dirname(path), `.${basename(path)}.${randomBytes(4).toString("hex")}.part`)
    : path;
  let handle: FileHandle;
  try {
    handle = await open(target, regular ? "wx" : "w");
  } catch (error) {
    throw fail(error);
  }
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return {
    name: path,
    async write(chunk) {
      try {
        let offset = 0;
        while (offset < chunk.length) {
          const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
          offset += bytesWritten;
        }
      } catch (error) {
        throw fail(error);
      }
    },
    async finish(wav) {
      let note: string | undefined;
      try {
        await close();
        if (!regular) return undefined;
        if (wav) {
          const patch = await patchWavFileSizes(target);
          if (!patch.patched) note = `WAV sizes in ${path} left as received: ${patch.reason}`;
        }
        await rename(target, path);
      } catch (error) {
        throw fail(error);
      }
      return note;
    },
    async abort() {
      await close().catch(() => undefined);
      if (regular) await rm(target, { force: true }).catch(() => undefined);
    },
  };
}

function describeFsError(error: unknown): string {
  switch (errorCode(error)) {
    case "ENOENT":
      return "its directory does not exist";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "it is a directory";
    case "ENOSPC":
      return "no space left on the device";
    case "EROFS":
      return "read-only file system";
    case "EPIPE":
      return "the reader went away";
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

function errorCode(error: unknown): string | undefined {
  const code: unknown = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}

async function* single<T>(value: T): AsyncGenerator<T> {
  yield value;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
