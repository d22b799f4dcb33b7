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

const usage = `Usage: voxgate voices [--engine ID] [--json] [gateway flags]

Lists every voice the gateway knows: presets of connected engines and cloned voices. Pass a
voice's ID to "voxgate speak --voice". Needs the "voices" scope.

Flags:
  --engine ID  only voices of this engine, e.g. espeak-ng
  --json       print a JSON array of voices instead of a table

${GATEWAY_FLAGS_HELP}
`;

/** Most voices asked for per page: the server maximum, to keep round trips few. */
const PAGE_SIZE = 500;

/** `voxgate voices`. */
export const voicesCommand: CliCommand = {
  name: "voices",
  summary: "List voices (presets and cloned)",
  usage,
  async run(argv: string[], io: CliIo): Promise<number> {
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
