import { Code, ConnectError } from "@connectrpc/connect";
import { AudioEncoding } from "../../../gen/voxgate/v1/audio_pb.js";
import type { Job, RenderJobSpec } from "../../../gen/voxgate/v1/job_pb.js";
import { inSpan } from "../../tracing/spans.js";
import type { JobExecutor, JobResult } from "../job-executor.js";
import { type JobExecutorDeps, jobCallContext } from "./executor-deps.js";
import {
  describeStoredOutput,
  type JoinPart,
  renderOutputRate,
  writeJoinedOutput,
} from "./render-output.js";
import { hasSpeech, type PlannedSegment, planRender, silenceFrames } from "./render-plan.js";
import { runPool } from "./run-pool.js";
import {
  deleteSegments,
  findSegments,
  type PcmLayout,
  parseL16ContentType,
  putSegment,
} from "./segment-checkpoints.js";

/**
 * Creates the `render` executor: it synthesizes a script's segments through TtsService (up to
 * `limits.concurrency` at once, on any capable backends), joins them in order with exact silences
 * (`round(ms × rate / 1000)` frames) into one WAV, MP3, Ogg Opus, FLAC or AAC object, and
 * describes it (size, sha256, duration, segment count).
 *
 * Restart-safe: each finished segment's PCM is stored at `<keyPrefix>segments/<index>.pcm` before
 * progress counts it, and a re-run synthesizes only the segments without one. The output goes to
 * the fixed key `<keyPrefix>output.<wav|mp3|opus|flac|aac>`, so re-runs overwrite rather than add; a re-run that
 * finds the output already stored (a crash after the put) just describes it. The checkpoints are
 * deleted once the output is stored, leaving exactly one object per finished render.
 *
 * The output's sample rate is the script's `sample_rate_hz` (TtsService converts every segment to
 * it), else the rate of the first spoken segment in script order: segments that came at other
 * rates (a mix of engines) are converted to it while joining. Segments are stored at the rate
 * they came at, so a resumed render picks the same rate. Opus and AAC then take the next rate
 * their codec carries (see {@link renderOutputRate}). All segments must share one channel count
 * (FAILED_PRECONDITION naming both otherwise).
 */
export function createRenderExecutor(deps: JobExecutorDeps): JobExecutor {
  const limits = deps.limits;
  const specOf = (job: Job): RenderJobSpec => {
    if (job.spec?.kind.case !== "render") {
      throw new ConnectError(`job ${job.id} is not a render job`, Code.InvalidArgument);
    }
    return job.spec.kind.value;
  };

  return {
    kind: "render",
    validate(spec) {
      if (spec.kind.case !== "render") {
        throw new ConnectError("spec is not a render script", Code.InvalidArgument);
      }
      planRender(spec.kind.value, limits);
    },
    async run(job, context): Promise<JobResult> {
      const plan = planRender(specOf(job), limits);
      const { blobs, keyPrefix, signal, log } = context;
      const total = plan.segments.length;
      const outputKey = `${keyPrefix}output.${plan.format}`;
      const result = (output: {
        contentType: string;
        sizeBytes: number;
        digest: string;
        durationMs: number;
      }): JobResult => ({
        output: {
          contentType: output.contentType,
          sizeBytes: BigInt(output.sizeBytes),
          durationMs: BigInt(output.durationMs),
          digest: output.digest,
          itemCount: total,
        },
        outputKey,
      });

      const stored = await describeStoredOutput(blobs, outputKey, signal);
      if (stored) {
        log.info({ outputKey }, "render output already stored by an earlier attempt");
        await deleteSegments(blobs, keyPrefix);
        await context.reportProgress(total, total, "rendered");
        return result(stored);
      }

      const done = await findSegments(blobs, keyPrefix, total);
      const formats = createFormatCheck(plan.sampleRateHz);
      for (const checkpoint of [...done.values()].sort((a, b) => a.index - b.index)) {
        formats.check(checkpoint.index, checkpoint);
      }
      // Pause-only segments need no synthesis: they count as done from the start.
      const silent = plan.segments.filter((segment) => !hasSpeech(segment)).length;
      // Progress goes out in the order segments finish, one report at a time: watchers see the
      // done count only ever grow.
      let progress = context.reportProgress(
        done.size + silent,
        total,
        done.size > 0
          ? `resuming: ${done.size} of ${total} segments were already rendered`
          : `rendering ${total} segments`,
      );
      await progress;
      if (done.size > 0) log.info({ done: done.size, total }, "render resumes from checkpoints");

      const todo = plan.segments.filter(
        (segment) => hasSpeech(segment) && !done.has(segment.index),
      );
      await runPool(
        todo,
        limits.concurrency,
        signal,
        async (segment, segmentSignal) => {
          const pcm = await inSpan(
            "voxgate.job.segment",
            {
              "voxgate.job.id": job.id,
              "voxgate.job.segment": segment.index,
              "voxgate.text_chars": segment.text.length,
            },
            () => synthesize(segment, segmentSignal),
          );
          formats.check(segment.index, pcm.layout);
          const checkpoint = await putSegment(
            blobs,
            keyPrefix,
            segment.index,
            pcm.data,
            pcm.layout,
            // The job's own signal: a segment that arrived is kept even when a sibling failed.
            signal,
          );
          done.set(segment.index, checkpoint);
          const count = done.size + silent;
          progress = progress.then(() =>
            context.reportProgress(
              count,
              total,
              `segment ${segment.index + 1} of ${total} rendered`,
            ),
          );
          await progress;
        },
        context.windDown,
      );

      // Only a script of pauses has no spoken layout; planRender made it name a rate.
      const first = formats.layout() ?? { sampleRateHz: plan.sampleRateHz, channels: 1 };
      const layout = {
        sampleRateHz: await renderOutputRate(plan.format, first.sampleRateHz),
        channels: first.channels,
      };
      const parts: JoinPart[] = plan.segments.map((segment) => {
        const checkpoint = done.get(segment.index);
        if (hasSpeech(segment) && !checkpoint) {
          throw new ConnectError(`segment ${segment.index + 1} was not rendered`, Code.Internal);
        }
        return {
          key: checkpoint?.key,
          sizeBytes: checkpoint?.sizeBytes ?? 0,
          sampleRateHz: checkpoint?.sampleRateHz,
          silenceFrames: silenceFrames(segment.pauseAfterMs, layout.sampleRateHz),
        };
      });
      const converted = parts.filter(
        (part) => part.sampleRateHz !== undefined && part.sampleRateHz !== layout.sampleRateHz,
      ).length;
      if (converted > 0) {
        log.info(
          { sampleRateHz: layout.sampleRateHz, converted },
          "render converts segments of other rates to the output's",
        );
      }
      const output = await writeJoinedOutput({
        blobs,
        key: outputKey,
        parts,
        layout,
        format: plan.format,
        audio: deps.audio,
        signal,
      });
      const deleted = await deleteSegments(blobs, keyPrefix);
      log.info(
        { outputKey, sizeBytes: output.sizeBytes, durationMs: output.durationMs, deleted },
        "render output stored",
      );
      return result(output);

      /** One segment through TtsService as raw PCM, as the job's owner. */
      async function synthesize(
        segment: PlannedSegment,
        segmentSignal: AbortSignal,
      ): Promise<{ data: Uint8Array; layout: PcmLayout }> {
        try {
          const response = await deps.tts.synthesize(
            {
              text: segment.text,
              voice: segment.voice,
              speed: segment.speed,
              instructions: segment.instructions,
              engine: segment.engine,
              params: segment.params,
              encoding: AudioEncoding.PCM,
              sampleRateHz: plan.sampleRateHz,
            },
            {
              signal: segmentSignal,
              contextValues: jobCallContext(job, context, `s${segment.index}`),
            },
          );
          const layout = parseL16ContentType(response.contentType);
          if (!layout) {
            throw new ConnectError(
              `TtsService answered ${JSON.stringify(response.contentType)} for PCM`,
              Code.Internal,
            );
          }
          return { data: response.data, layout };
        } catch (error) {
          throw segmentError(segment.index, total, error);
        }
      }
    },
  };
}

/**
 * Checks each segment's PCM layout as it arrives and keeps the job's: with `sampleRateHz` set,
 * every segment must come at it; without, rates may differ (converted while joining) and the job
 * takes the rate of the spoken segment earliest in the script. Channels must always match.
 */
function createFormatCheck(sampleRateHz: number) {
  let reference: { index: number; layout: PcmLayout } | undefined;
  let firstSpoken: { index: number; layout: PcmLayout } | undefined;
  const describe = (channels: number) => (channels === 1 ? "mono" : `${channels}-channel`);
  return {
    check(index: number, layout: PcmLayout): void {
      if (sampleRateHz !== 0 && layout.sampleRateHz !== sampleRateHz) {
        throw new ConnectError(
          `segment ${index + 1} came at ${layout.sampleRateHz} Hz but the script asks for ` +
            `sample_rate_hz ${sampleRateHz}; the backend did not convert it`,
          Code.FailedPrecondition,
        );
      }
      const seen = {
        index,
        layout: { sampleRateHz: layout.sampleRateHz, channels: layout.channels },
      };
      if (!firstSpoken || index < firstSpoken.index) firstSpoken = seen;
      if (!reference) {
        reference = seen;
        return;
      }
      if (reference.layout.channels !== layout.channels) {
        throw new ConnectError(
          `segment ${index + 1} came as ${describe(layout.channels)} audio but segment ` +
            `${reference.index + 1} as ${describe(reference.layout.channels)}; segments must ` +
            "share one channel count: route them to engines that agree",
          Code.FailedPrecondition,
        );
      }
    },
    /** The job's PCM layout: `sampleRateHz`, else the earliest spoken segment's rate. */
    layout: (): PcmLayout | undefined => firstSpoken?.layout,
  };
}

/**
 * Names the segment in a failed call's error. UNIMPLEMENTED (e.g. a sample rate that would need
 * resampling) becomes FAILED_PRECONDITION: a re-run would fail the same way, so the job should
 * fail at once rather than be retried.
 */
function segmentError(index: number, total: number, error: unknown): unknown {
  if (!(error instanceof ConnectError) || error.code === Code.Canceled) return error;
  const code = error.code === Code.Unimplemented ? Code.FailedPrecondition : error.code;
  return new ConnectError(
    `segment ${index + 1} of ${total}: ${error.rawMessage}`,
    code,
    undefined,
    undefined,
    error,
  );
}
