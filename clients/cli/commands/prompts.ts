/**
 * `voxgate prompts import`: copies the clone prompts of the Qwen3-TTS relay's bucket
 * (`voice-prompts/{name}.pt`, GCS or S3) into the gateway's prompt store, each under its name.
 */
import type { BlobInfo, BlobStore } from "../../../services/object-store/blob-store.js";
import { checkPromptName } from "../../../services/prompt-store/named-prompt-checks.js";
import type { CliCommand, CliIo } from "../cli-command.js";
import { CliError, CliUsageError, EXIT_OK } from "../cli-errors.js";
import {
  callOptions,
  GATEWAY_FLAGS,
  GATEWAY_FLAGS_HELP,
  resolveGatewayOptions,
  withGatewayClient,
} from "../gateway-flags.js";
import { parseFlags } from "../parse-flags.js";

/** Largest prompt object the import reads, in bytes (the gateway's own cap applies too). */
const MAX_PROMPT_OBJECT_BYTES = 256 * 1024 * 1024;
/** Pieces the prompt bytes go up in, in bytes. */
const UPLOAD_CHUNK_BYTES = 256 * 1024;
/** Most objects one import looks at. */
const MAX_OBJECTS = 100_000;

const USAGE = `Usage: voxgate prompts import --from gs://BUCKET[/PREFIX] | s3://BUCKET[/PREFIX]
                              --model-family FAMILY [options]

Copies every PREFIX{name}.pt object (PREFIX defaults to voice-prompts/, as the Qwen3-TTS relay
stored them) into the gateway's prompt store and names it {name} for this token's tenant, so
relay clients speak it with {"voice_prompt": "{name}"} and voxgate clients with prompt_name.
A prompt only works on the model that made it: give its family and size (Qwen3-TTS prompts:
--model-family qwen3-tts --model-size 1.7b). The relay's GCS metadata (qwen3_tags,
qwen3_character, qwen3_description, qwen3_ref_text) becomes tags, labels and the transcript.
The bucket is read with this machine's credentials; the gateway never sees them.

Options:
  --from URL               gs://bucket[/prefix] or s3://bucket[/prefix] (required)
  --model-family FAMILY    model family that made the prompts (required), e.g. qwen3-tts
  --model-size SIZE        model size, e.g. 1.7b
  --engine ENGINE          engine that made them, e.g. qwen3-http
  --tag TAG                tag added to every prompt (repeatable)
  --replace                overwrite prompts of the same name (else they are skipped)
  --dry-run                list what would be imported, import nothing
  --gcs-endpoint URL       GCS JSON API endpoint (emulators); --gcs-key-file FILE service account
  --gcs-project ID         GCS project; --gcs-universe-domain D for non-Google endpoints
  --s3-endpoint URL        S3-compatible endpoint; --s3-region R (default us-east-1);
  --s3-force-path-style    path-style S3 URLs (MinIO, s3rver); credentials from the AWS env
  --json                   print one JSON line per prompt

${GATEWAY_FLAGS_HELP}

Example:
  voxgate prompts import --from gs://eigen-backups/voice-prompts/ --model-family qwen3-tts --model-size 1.7b`;

/** Where the prompts are read from. */
interface Source {
  kind: "gcs" | "s3";
  bucket: string;
  prefix: string;
}

function parseSource(url: string): Source {
  const match = /^(gs|s3):\/\/([a-z0-9][a-z0-9._-]{1,221}[a-z0-9])(\/.*)?$/.exec(url);
  if (!match)
    throw new CliUsageError(`--from "${url}" is not gs://BUCKET[/PREFIX] or s3://BUCKET[/PREFIX]`);
  let prefix = (match[3] ?? "/").slice(1) || "voice-prompts/";
  if (!prefix.endsWith("/")) prefix += "/";
  return { kind: match[1] === "gs" ? "gcs" : "s3", bucket: match[2] ?? "", prefix };
}

/** Tags, labels and transcript from the relay's GCS object metadata (`qwen3_*`). */
export function relayMetadataOf(info: Pick<BlobInfo, "metadata">): {
  tags: string[];
  labels: Record<string, string>;
  referenceText: string;
} {
  const m = info.metadata;
  let tags: string[] = [];
  try {
    const parsed = JSON.parse(m.qwen3_tags ?? "[]") as unknown;
    if (Array.isArray(parsed)) tags = parsed.filter((t): t is string => typeof t === "string");
  } catch {
    // Unreadable tags are left out; the prompt itself still imports.
  }
  const labels: Record<string, string> = {};
  if (m.qwen3_character) labels.character = m.qwen3_character;
  if (m.qwen3_description) labels.description = m.qwen3_description;
  return { tags, labels, referenceText: m.qwen3_ref_text ?? "" };
}

async function openSource(source: Source, values: Record<string, unknown>): Promise<BlobStore> {
  const text = (key: string) => (typeof values[key] === "string" ? (values[key] as string) : "");
  if (source.kind === "gcs") {
    const { createGcsBlobStore } = await import("../../../services/object-store/gcs-blob-store.js");
    return createGcsBlobStore({
      bucket: source.bucket,
      prefix: "",
      ...(text("gcs-project") ? { projectId: text("gcs-project") } : {}),
      ...(text("gcs-key-file") ? { keyFilename: text("gcs-key-file") } : {}),
      ...(text("gcs-endpoint") ? { apiEndpoint: text("gcs-endpoint") } : {}),
      ...(text("gcs-universe-domain") ? { universeDomain: text("gcs-universe-domain") } : {}),
    });
  }
  const { createS3BlobStore } = await import("../../../services/object-store/s3-blob-store.js");
  return createS3BlobStore({
    bucket: source.bucket,
    prefix: "",
    endpoint: text("s3-endpoint"),
    region: text("s3-region") || "us-east-1",
    forcePathStyle: values["s3-force-path-style"] === true,
    partSizeBytes: 8 * 1024 * 1024,
  });
}

async function readAll(chunks: AsyncIterable<Uint8Array>, key: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.byteLength;
    if (size > MAX_PROMPT_OBJECT_BYTES) throw new CliError(`${key} is over 256 MiB`);
    parts.push(Buffer.from(chunk));
  }
  return Buffer.concat(parts);
}

async function runImport(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      ...GATEWAY_FLAGS,
      from: { type: "string", default: "" },
      "model-family": { type: "string", default: "" },
      "model-size": { type: "string", default: "" },
      engine: { type: "string", default: "" },
      tag: { type: "string", multiple: true, default: [] },
      replace: { type: "boolean", default: false },
      "dry-run": { type: "boolean", default: false },
      "gcs-endpoint": { type: "string" },
      "gcs-key-file": { type: "string" },
      "gcs-project": { type: "string" },
      "gcs-universe-domain": { type: "string" },
      "s3-endpoint": { type: "string" },
      "s3-region": { type: "string" },
      "s3-force-path-style": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  if (!values.from) throw new CliUsageError("prompts import needs --from gs://… or s3://…");
  if (!values["model-family"]) {
    throw new CliUsageError(
      "prompts import needs --model-family (a prompt only works on the model that made it)",
    );
  }
  const source = parseSource(values.from);
  const options = resolveGatewayOptions(values, io.env);
  const store = await openSource(source, values);
  let imported = 0;
  let skipped = 0;
  try {
    const objects: BlobInfo[] = [];
    let pageToken = "";
    do {
      const page = await store.list(source.prefix, { pageSize: 1000, pageToken });
      objects.push(...page.items);
      pageToken = page.nextPageToken;
    } while (pageToken && objects.length < MAX_OBJECTS);
    const prompts = objects
      .map((info) => ({
        info,
        name: /^([^/]+)\.pt$/.exec(info.key.slice(source.prefix.length))?.[1],
      }))
      .filter((p): p is { info: BlobInfo; name: string } => p.name !== undefined);
    if (prompts.length === 0) {
      throw new CliError(`no ${source.prefix}*.pt objects in ${values.from}`);
    }
    await withGatewayClient(io, options, "voices", async (client) => {
      for (const { info, name } of prompts) {
        try {
          checkPromptName(name);
        } catch (err) {
          io.stderr.write(`skipped ${info.key}: ${(err as Error).message}\n`);
          skipped++;
          continue;
        }
        // S3 lists without object metadata: ask for it.
        const described = source.kind === "s3" ? ((await store.stat(info.key)) ?? info) : info;
        const meta = relayMetadataOf(described);
        if (values["dry-run"]) {
          io.stdout.write(`${name}\t${info.key}\t${info.sizeBytes} bytes\n`);
          continue;
        }
        if (!values.replace) {
          const exists = await client.prompts
            .getNamedPrompt({ name }, callOptions(io))
            .then(() => true)
            .catch(() => false);
          if (exists) {
            io.stderr.write(`skipped ${name}: a prompt of that name exists (use --replace)\n`);
            skipped++;
            continue;
          }
        }
        const bytes = await readAll(await store.get(info.key), info.key);
        const put = await client.prompts.putPrompt(
          (async function* () {
            yield {
              kind: {
                case: "metadata" as const,
                value: {
                  name,
                  model: { family: values["model-family"], size: values["model-size"] },
                  engine: values.engine,
                  referenceText: meta.referenceText,
                  contentType: "application/octet-stream",
                },
              },
            };
            for (let at = 0; at < bytes.byteLength; at += UPLOAD_CHUNK_BYTES) {
              yield {
                kind: { case: "data" as const, value: bytes.subarray(at, at + UPLOAD_CHUNK_BYTES) },
              };
            }
          })(),
          callOptions(io),
        );
        const digest = put.prompt?.digest ?? "";
        const named = await client.prompts.namePrompt(
          {
            name,
            digest,
            tags: [...new Set([...meta.tags, ...values.tag])],
            labels: meta.labels,
            replace: values.replace,
          },
          callOptions(io),
        );
        imported++;
        if (values.json) {
          io.stdout.write(
            `${JSON.stringify({ name, digest, store_key: named.prompt?.storeKey ?? "", source: info.key })}\n`,
          );
        } else {
          io.stdout.write(`${name}\t${digest}\n`);
        }
      }
    });
  } finally {
    await store.close();
  }
  io.stderr.write(
    `${values["dry-run"] ? "would import" : "imported"} ${values["dry-run"] ? "the above" : imported} prompt(s)` +
      `${skipped ? `, skipped ${skipped}` : ""} from ${values.from}\n`,
  );
  return EXIT_OK;
}

/** `voxgate prompts`: manage named clone prompts (import from the Qwen3 relay's bucket). */
export const promptsCommand: CliCommand = {
  name: "prompts",
  summary: "Import the Qwen3 relay's clone prompts (voice-prompts/{name}.pt) by name",
  usage: USAGE,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub === "import") return runImport(rest, io);
    throw new CliUsageError(`unknown prompts subcommand "${sub ?? ""}"; use: prompts import`);
  },
};
