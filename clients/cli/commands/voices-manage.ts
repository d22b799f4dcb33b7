/** `voxgate voices create` and `voxgate voices delete`: manage cloned voices. */
import { readFile, stat } from "node:fs/promises";
import { toJson } from "@bufbuild/protobuf";
import { VoiceSchema } from "../../../gen/voxgate/v1/voice_pb.js";
import type { CliIo } from "../cli-command.js";
import { CliError, CliUsageError, EXIT_OK } from "../cli-errors.js";
import {
  callOptions,
  GATEWAY_FLAGS,
  resolveGatewayOptions,
  withGatewayClient,
} from "../gateway-flags.js";
import { parseFlags } from "../parse-flags.js";

/** Largest reference file the CLI reads, in bytes; the gateway's own cap (20 MiB by default) applies too. */
const MAX_AUDIO_FILE_BYTES = 1024 * 1024 * 1024;

/**
 * `voxgate voices create --name N --audio ref.wav [--text T] [--language L] [--engine E]
 * [--request-id R] [--json]`: uploads a reference recording and prints the new voice's id.
 */
export async function runVoicesCreate(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      ...GATEWAY_FLAGS,
      name: { type: "string", default: "" },
      audio: { type: "string", default: "" },
      text: { type: "string", default: "" },
      language: { type: "string", default: "" },
      engine: { type: "string", default: "" },
      description: { type: "string", default: "" },
      "request-id": { type: "string", default: "" },
      json: { type: "boolean", default: false },
    },
  });
  if (!values.name) throw new CliUsageError("voices create needs --name");
  if (!values.audio)
    throw new CliUsageError("voices create needs --audio FILE (WAV, MP3, FLAC or OGG)");
  const info = await stat(values.audio).catch(() => undefined);
  if (!info?.isFile()) throw new CliError(`cannot read ${values.audio}: not a file`);
  if (info.size > MAX_AUDIO_FILE_BYTES) throw new CliError(`${values.audio} is over 1 GiB`);
  const referenceAudio = await readFile(values.audio);
  const options = resolveGatewayOptions(values, io.env);
  const voice = await withGatewayClient(io, options, "voices", async (client) => {
    const { voice } = await client.voices.createVoice(
      {
        name: values.name,
        referenceAudio,
        referenceText: values.text,
        language: values.language,
        engine: values.engine,
        description: values.description,
        requestId: values["request-id"],
      },
      callOptions(io),
    );
    return voice;
  });
  if (!voice) throw new CliError("the gateway answered without a voice");
  if (values.json) {
    io.stdout.write(`${JSON.stringify(toJson(VoiceSchema, voice), null, 2)}\n`);
  } else {
    io.stdout.write(`${voice.id}\n`);
    io.stderr.write(
      `cloned "${voice.name}" with ${voice.engine} (${[voice.model?.family, voice.model?.size].filter(Boolean).join(" ")}); ` +
        `speak with: voxgate speak --voice ${voice.id} "…"\n`,
    );
  }
  return EXIT_OK;
}

/** `voxgate voices delete ID`: deletes a cloned voice (presets cannot be deleted). */
export async function runVoicesDelete(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { ...GATEWAY_FLAGS },
  });
  if (positionals.length !== 1) throw new CliUsageError("voices delete needs exactly one voice ID");
  const voiceId = positionals[0] ?? "";
  const options = resolveGatewayOptions(values, io.env);
  await withGatewayClient(io, options, "voices", (client) =>
    client.voices.deleteVoice({ voiceId }, callOptions(io)),
  );
  io.stderr.write(`deleted ${voiceId}\n`);
  return EXIT_OK;
}
