/** `voxgate voices`: lists the voice catalog, every page, as a table or JSON. */
import { toJson } from "@bufbuild/protobuf";
import { type Voice, VoiceSchema, VoiceType } from "../../../gen/voxgate/v1/voice_pb.js";
import type { CliCommand, CliIo } from "../cli-command.js";
import { CliError, EXIT_OK } from "../cli-errors.js";
import { enumLabel, formatTable } from "../format-table.js";
import {
  callOptions,
  GATEWAY_FLAGS,
  GATEWAY_FLAGS_HELP,
  resolveGatewayOptions,
  withGatewayClient,
} from "../gateway-flags.js";
import { parseFlags } from "../parse-flags.js";
import { runVoicesCreate, runVoicesDelete } from "./voices-manage.js";

const usage = `Usage: voxgate voices [list] [--engine ID] [--json] [gateway flags]
       voxgate voices create --name N --audio ref.wav [--text T] [--language L] [--engine E] [--json]
       voxgate voices delete ID

Lists every voice the gateway knows: presets of connected engines and cloned voices (the TYPE
column says which). Pass a voice's ID to "voxgate speak --voice". Needs the "voices" scope.

"create" clones a voice from a reference recording (WAV, MP3, FLAC or OGG; the gateway limits its
size and length) and prints the new voice's ID. "delete" deletes a cloned voice.

Flags:
  --engine ID  only voices of this engine, e.g. espeak-ng (create: clone with this engine)
  --json       print JSON instead of a table (create: the new voice)
  --name N     create: the voice's name
  --audio FILE create: the reference recording
  --text T     create: the transcript of the reference (optional)
  --language L create: the reference's language, e.g. en-US (optional)

${GATEWAY_FLAGS_HELP}
`;

/** Most voices asked for per page: the server maximum, to keep round trips few. */
const PAGE_SIZE = 500;

/** `voxgate voices`. */
export const voicesCommand: CliCommand = {
  name: "voices",
  summary: "List voices (presets and cloned); create and delete cloned voices",
  usage,
  async run(argv: string[], io: CliIo): Promise<number> {
    if (argv[0] === "create") return runVoicesCreate(argv.slice(1), io);
    if (argv[0] === "delete") return runVoicesDelete(argv.slice(1), io);
    if (argv[0] === "list") argv = argv.slice(1);
    const { values } = parseFlags({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        ...GATEWAY_FLAGS,
        engine: { type: "string", default: "" },
        json: { type: "boolean", default: false },
      },
    });
    const options = resolveGatewayOptions(values, io.env);
    const voices = await withGatewayClient(io, options, "voices", async (client) => {
      const all: Voice[] = [];
      const seenTokens = new Set<string>();
      let pageToken = "";
      do {
        const page = await client.voices.listVoices(
          { pageSize: PAGE_SIZE, pageToken, engine: values.engine },
          callOptions(io),
        );
        all.push(...page.voices);
        pageToken = page.nextPageToken;
        // A server handing out the same token twice would keep us paging forever.
        if (seenTokens.has(pageToken)) {
          throw new CliError(`the gateway repeated page token "${pageToken}" while listing voices`);
        }
        seenTokens.add(pageToken);
      } while (pageToken !== "");
      return all;
    });

    if (values.json) {
      const json = voices.map((voice) => toJson(VoiceSchema, voice));
      io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
      return EXIT_OK;
    }
    const rows = voices.map((voice) => [
      voice.id,
      voice.name,
      enumLabel(VoiceType, voice.type),
      voice.engine,
      voice.languages.join(","),
    ]);
    io.stdout.write(formatTable(["ID", "NAME", "TYPE", "ENGINE", "LANGUAGES"], rows));
    if (voices.length === 0) {
      io.stderr.write(
        values.engine === "" ? "no voices\n" : `no voices for engine "${values.engine}"\n`,
      );
    }
    return EXIT_OK;
  },
};
