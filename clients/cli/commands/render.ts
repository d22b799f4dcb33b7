/** `voxgate render`: renders a script to one audio file through a durable render job. */
import { randomUUID } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { extname } from "node:path";
import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { AudioEncoding } from "../../../gen/voxgate/v1/audio_pb.js";
import { type RenderJobSpec, RenderJobSpecSchema } from "../../../gen/voxgate/v1/job_pb.js";
import { isSfmlParseError, parseSfml } from "../../../services/sfml/index.js";
import type { CliCommand, CliIo } from "../cli-command.js";
import { CliError, CliUsageError, EXIT_OK } from "../cli-errors.js";
import {
  callOptions,
  GATEWAY_FLAGS,
  GATEWAY_FLAGS_HELP,
  resolveGatewayOptions,
  withGatewayClient,
} from "../gateway-flags.js";
import { parseChoiceFlag, parseFlags } from "../parse-flags.js";
import {
  checkWritable,
  createProgressDisplay,
  downloadJobOutput,
  requireSucceeded,
  watchJobToEnd,
} from "./jobs-support.js";

/** `--format` names (also output file extensions) and the encodings they ask for. */
const RENDER_ENCODINGS: Readonly<Record<string, AudioEncoding>> = {
  wav: AudioEncoding.WAV,
  mp3: AudioEncoding.MP3,
  opus: AudioEncoding.OPUS,
  flac: AudioEncoding.FLAC,
  aac: AudioEncoding.AAC,
};

/** Largest script file the CLI reads, in bytes (the gateway's default request limit). */
export const MAX_SCRIPT_BYTES = 16 * 1024 * 1024;

const usage = `Usage: voxgate render SCRIPT.json -o FILE [--format wav|mp3|opus|flac|aac] [--no-wait] [gateway flags]
       voxgate render STORY.sfml --cast CAST.json -o FILE [...]

Renders a script of segments into one audio file. The gateway runs it as a durable job: segments
are synthesized on any capable backends, a few at once, joined in order with the pauses asked for,
and the job survives a gateway restart. The command shows progress (a bar on a terminal, lines
otherwise), then downloads the output and checks its sha256. Needs the "jobs" scope.

SCRIPT.json is a RenderJobSpec in protobuf JSON:

  {
    "defaultVoice": "en-us",
    "pauseBetweenMs": 300,
    "segments": [
      { "text": "Once upon a time…" },
      { "text": "…there was a gateway.", "voice": "en-gb", "pauseAfterMs": 800 },
      { "text": "The end.", "speed": 0.9 }
    ]
  }

STORY.sfml is a StoryForge SFML v1 script (one segment per bullet, SFML pauses as silences);
CAST.json maps each speaker (or its SFML voice id) to a voice: {"Narrator": {"voice": "en-us",
"engine": "espeak-ng"}, "Maris": "en-gb"}. Parse errors name the line, column and rule.

Flags:
  --cast FILE        the cast map of an SFML script (required for .sfml scripts)
  -o, --output FILE  file to write the audio to; "-" for stdout (required unless --no-wait)
  --format NAME      wav, mp3, opus (Ogg Opus), flac or aac (ADTS) (default: the script's
                     "encoding", else the output file's extension: .mp3, .opus or .ogg, .flac,
                     .aac; else wav)
  --no-wait          print the job id and return at once; follow it with "voxgate jobs watch ID"
                     and fetch it with "voxgate jobs output ID -o FILE"

If the command is interrupted, the job keeps running on the gateway.

${GATEWAY_FLAGS_HELP}

Examples:
  voxgate render story.json -o story.wav
  voxgate render story.json -o story.mp3
  voxgate render story.json -o story.opus
  voxgate render story.json --no-wait
`;

/** `voxgate render`. */
export const renderCommand: CliCommand = {
  name: "render",
  summary: "Render a script of segments to one audio file (durable job)",
  usage,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseFlags({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        ...GATEWAY_FLAGS,
        output: { type: "string", short: "o" },
        format: { type: "string" },
        cast: { type: "string" },
        "no-wait": { type: "boolean", default: false },
      },
    });
    const [scriptPath, ...extra] = positionals;
    if (scriptPath === undefined) {
      throw new CliUsageError("give the script file, e.g. voxgate render story.json -o story.wav");
    }
    if (extra.length > 0) throw new CliUsageError(`unexpected argument "${extra[0]}"`);
    const wait = !values["no-wait"];
    const output = values.output;
    if (wait && output === undefined) {
      throw new CliUsageError("pass -o FILE for the audio (or --no-wait to only queue the job)");
    }
    if (output === "-" && io.stdout.isTTY === true) {
      throw new CliUsageError("refusing to write audio to a terminal: pass -o FILE");
    }
    const format =
      values.format === undefined
        ? undefined
        : parseChoiceFlag("format", values.format, Object.keys(RENDER_ENCODINGS));
    const sfml = scriptPath.toLowerCase().endsWith(".sfml") || values.cast !== undefined;
    const spec = sfml
      ? await readSfmlScript(scriptPath, values.cast)
      : await readScript(scriptPath);
    const pieces = sfml ? "an SFML script" : `${spec.segments.length} segments`;
    if (format !== undefined) {
      spec.encoding = RENDER_ENCODINGS[format] ?? AudioEncoding.WAV;
    } else if (spec.encoding === AudioEncoding.UNSPECIFIED && output !== undefined) {
      // A .wav file leaves the encoding unspecified, which renders WAV.
      const extension = extname(output).slice(1).toLowerCase();
      if (extension !== "wav") {
        spec.encoding = RENDER_ENCODINGS[extension === "ogg" ? "opus" : extension] ?? spec.encoding;
      }
    }
    // Refuse an unwritable destination before the gateway does any work.
    if (output !== undefined) await checkWritable(output);
    const options = resolveGatewayOptions(values, io.env);

    return withGatewayClient(io, options, "jobs", async (client) => {
      const started = performance.now();
      // One request id for this invocation: a retried CreateJob returns the same job.
      const { job } = await client.jobs.createJob(
        { spec: { kind: { case: "render", value: spec } }, requestId: `cli-${randomUUID()}` },
        callOptions(io),
      );
      if (!job) throw new CliError("the gateway answered CreateJob without a job");
      if (!wait) {
        io.stdout.write(`${job.id}\n`);
        io.stderr.write(`queued render job ${job.id} (${pieces}): voxgate jobs watch ${job.id}\n`);
        return EXIT_OK;
      }
      io.stderr.write(`render job ${job.id}: ${pieces}\n`);
      let ended: typeof job;
      try {
        ended = await watchJobToEnd(client, job.id, io, createProgressDisplay(io));
      } catch (error) {
        if (io.signal?.aborted === true) {
          io.stderr.write(
            `job ${job.id} keeps running on the gateway: voxgate jobs watch ${job.id}\n`,
          );
        }
        throw error;
      }
      requireSucceeded(ended);
      const saved = await downloadJobOutput(client, ended, output ?? "-", io);
      const seconds = (Number(ended.output?.durationMs ?? 0n) / 1000).toFixed(2);
      io.stderr.write(
        `wrote ${saved.name}: ${saved.bytes.toLocaleString("en-US")} bytes, ${seconds} s of audio ` +
          `(${saved.contentType}), ${ended.progress?.totalUnits ?? spec.segments.length} segments, job ${job.id}, ` +
          `total ${Math.round(performance.now() - started)} ms\n`,
      );
      return EXIT_OK;
    });
  },
};

/**
 * Reads a script file as a RenderJobSpec in protobuf JSON.
 * @throws CliError for a missing, oversized or malformed file, naming the problem.
 */
export async function readScript(path: string): Promise<RenderJobSpec> {
  const info = await stat(path).catch((error: unknown) => {
    throw new CliError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
  });
  if (!info.isFile()) throw new CliError(`cannot read ${path}: it is not a file`);
  if (info.size > MAX_SCRIPT_BYTES) {
    throw new CliError(
      `${path} is ${info.size} bytes; scripts are limited to ${MAX_SCRIPT_BYTES} bytes`,
    );
  }
  let json: JsonValue;
  try {
    json = JSON.parse(await readFile(path, "utf8")) as JsonValue;
  } catch (error) {
    throw new CliError(`${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  try {
    return fromJson(RenderJobSpecSchema, json);
  } catch (error) {
    throw new CliError(
      `${path} is not a render script (RenderJobSpec JSON): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/**
 * Reads an SFML script and its cast map into a RenderJobSpec (`sfml` + `cast`), after parsing the
 * script here so a fault is reported before the gateway is asked.
 * @throws CliError for a missing file, a parse error (line, column, rule) or a malformed cast.
 */
export async function readSfmlScript(
  path: string,
  castPath: string | undefined,
): Promise<RenderJobSpec> {
  if (castPath === undefined) {
    throw new CliUsageError("an SFML script needs --cast CAST.json (speaker name -> voice)");
  }
  const text = await readSmallFile(path);
  try {
    parseSfml(text);
  } catch (error) {
    if (isSfmlParseError(error)) throw new CliError(`${path}: ${error.message}`, { cause: error });
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(await readSmallFile(castPath));
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`${castPath} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new CliError(`${castPath} must be an object: {"Narrator": {"voice": "en-us"}, ...}`);
  }
  const cast: Record<string, { voice: string; engine: string }> = {};
  for (const [name, value] of Object.entries(json)) {
    if (typeof value === "string") cast[name] = { voice: value, engine: "" };
    else if (
      typeof value === "object" &&
      value !== null &&
      typeof (value as { voice?: unknown }).voice === "string"
    ) {
      const entry = value as { voice: string; engine?: unknown };
      cast[name] = {
        voice: entry.voice,
        engine: typeof entry.engine === "string" ? entry.engine : "",
      };
    } else {
      throw new CliError(`${castPath}: "${name}" must be a voice id or {"voice", "engine"}`);
    }
  }
  return create(RenderJobSpecSchema, { sfml: text, cast });
}

async function readSmallFile(path: string): Promise<string> {
  const info = await stat(path).catch((error: unknown) => {
    throw new CliError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
  });
  if (!info.isFile()) throw new CliError(`cannot read ${path}: it is not a file`);
  if (info.size > MAX_SCRIPT_BYTES) {
    throw new CliError(
      `${path} is ${info.size} bytes; scripts are limited to ${MAX_SCRIPT_BYTES} bytes`,
    );
  }
  return readFile(path, "utf8");
}
