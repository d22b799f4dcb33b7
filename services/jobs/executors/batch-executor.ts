import { Code, ConnectError } from "@connectrpc/connect";
import { AudioEncoding } from "../../../gen/voxgate/v1/audio_pb.js";
import type { BatchSynthesizeJobSpec, Job } from "../../../gen/voxgate/v1/job_pb.js";
import { inSpan } from "../../tracing/spans.js";
import type { JobExecutor } from "../job-executor.js";
import { type JobExecutorDeps, jobCallContext } from "./executor-deps.js";
import { runPool } from "./run-pool.js";

/** File extension of a batch item's object, by the encoding it asked for. */
const EXTENSIONS = new Map<AudioEncoding, string>([
  [AudioEncoding.UNSPECIFIED, "wav"],
  [AudioEncoding.WAV, "wav"],
  [AudioEncoding.MP3, "mp3"],
  [AudioEncoding.PCM, "pcm"],
  [AudioEncoding.OPUS, "opus"],
  [AudioEncoding.FLAC, "flac"],
  [AudioEncoding.AAC, "aac"],
]);

/** Key of batch item `index`'s audio: `<keyPrefix>items/<index>.<wav|mp3|pcm|opus|flac|aac>`. */
export function batchItemKey(keyPrefix: string, index: number, encoding: AudioEncoding): string {
  return `${keyPrefix}items/${String(index).padStart(6, "0")}.${EXTENSIONS.get(encoding) ?? "bin"}`;
}

/**
 * Creates the `batch` executor: each item is one TtsService.Synthesize call (up to
 * `limits.concurrency` at once), stored whole at {@link batchItemKey}. Items already stored by an
 * earlier attempt are not synthesized again. The output counts the items and their bytes; the
 * items stay in the store under the job's prefix (there is no single output to download).
 */
export function createBatchExecutor(deps: JobExecutorDeps): JobExecutor {
  const limits = deps.limits;
  const checkSpec = (spec: BatchSynthesizeJobSpec): void => {
    const invalid = (message: string) => new ConnectError(message, Code.InvalidArgument);
    if (spec.items.length === 0) throw invalid("batch has no items");
    if (spec.items.length > limits.maxBatchItems) {
      throw invalid(
        `batch has ${spec.items.length} items; the limit is ${limits.maxBatchItems} ` +
          "(max batch items: VOXGATE_MAX_BATCH_ITEMS)",
      );
    }
    spec.items.forEach((item, index) => {
      if (item.text.trim().length === 0) throw invalid(`items[${index}].text is empty`);
      if (item.text.length > limits.maxTextChars) {
        throw invalid(
          `items[${index}].text is ${item.text.length} characters; the limit is ` +
            `${limits.maxTextChars} (max text chars: VOXGATE_MAX_TEXT_CHARS)`,
        );
      }
      if (!EXTENSIONS.has(item.encoding)) {
        throw invalid(
          `items[${index}].encoding ${AudioEncoding[item.encoding] ?? item.encoding} is not available; use WAV, MP3, PCM, OPUS, FLAC or AAC`,
        );
      }
    });
  };
  const specOf = (job: Job): BatchSynthesizeJobSpec => {
    if (job.spec?.kind.case !== "batch") {
      throw new ConnectError(`job ${job.id} is not a batch job`, Code.InvalidArgument);
    }
    return job.spec.kind.value;
  };

  return {
    kind: "batch",
    validate(spec) {
      if (spec.kind.case !== "batch") {
        throw new ConnectError("spec is not a batch spec", Code.InvalidArgument);
      }
      checkSpec(spec.kind.value);
    },
    async run(job, context) {
      const spec = specOf(job);
      checkSpec(spec);
      const { blobs, keyPrefix, signal } = context;
      const total = spec.items.length;
      const sizes = new Map<number, number>();
      const todo: number[] = [];
      for (const [index, item] of spec.items.entries()) {
        const info = await blobs.stat(batchItemKey(keyPrefix, index, item.encoding));
        if (info) sizes.set(index, info.sizeBytes);
        else todo.push(index);
      }
      let progress = context.reportProgress(sizes.size, total, `synthesizing ${total} items`);
      await progress;
      await runPool(
        todo,
        limits.concurrency,
        signal,
        async (index, itemSignal) => {
          const item = spec.items[index];
          if (!item) return;
          let response: { contentType: string; data: Uint8Array };
          try {
            response = await inSpan(
              "voxgate.job.item",
              {
                "voxgate.job.id": job.id,
                "voxgate.job.item": index,
                "voxgate.text_chars": item.text.length,
              },
              () =>
                deps.tts.synthesize(item, {
                  signal: itemSignal,
                  contextValues: jobCallContext(job, context, `i${index}`),
                }),
            );
          } catch (error) {
            if (!(error instanceof ConnectError) || error.code === Code.Canceled) throw error;
            const code = error.code === Code.Unimplemented ? Code.FailedPrecondition : error.code;
            throw new ConnectError(
              `item ${index + 1} of ${total}: ${error.rawMessage}`,
              code,
              undefined,
              undefined,
              error,
            );
          }
          await blobs.put(batchItemKey(keyPrefix, index, item.encoding), response.data, {
            contentType: response.contentType,
            // The job's own signal: an item that arrived is kept even when a sibling failed.
            signal,
          });
          sizes.set(index, response.data.byteLength);
          const count = sizes.size;
          progress = progress.then(() =>
            context.reportProgress(count, total, `item ${index + 1} of ${total} synthesized`),
          );
          await progress;
        },
        context.windDown,
      );
      let sizeBytes = 0;
      for (const size of sizes.values()) sizeBytes += size;
      return { output: { itemCount: total, sizeBytes: BigInt(sizeBytes) } };
    },
  };
}
