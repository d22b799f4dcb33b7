import { type Client, type ContextValues, createContextValues } from "@connectrpc/connect";
import type { Job } from "../../../gen/voxgate/v1/job_pb.js";
import type { TtsService } from "../../../gen/voxgate/v1/tts_pb.js";
import type { VoiceService } from "../../../gen/voxgate/v1/voice_pb.js";
import { kCallContext } from "../../gateway/call-context.js";
import type { AudioContainerOptions } from "../../tts/audio-container.js";
import type { JobContext } from "../job-executor.js";

/** Limits of render and batch jobs; build them with {@link renderLimitsFromSettings}. */
export interface RenderLimits {
  /**
   * Segments (or batch items) of one job synthesized at once. Each is one TtsService call, so
   * this bounds how many backend slots one job can hold (VOXGATE_RENDER_CONCURRENCY).
   */
  concurrency: number;
  /** Most segments in a render script (VOXGATE_MAX_RENDER_SEGMENTS). */
  maxSegments: number;
  /** Most items in a batch job (VOXGATE_MAX_BATCH_ITEMS). */
  maxBatchItems: number;
  /** Longest pause after a segment, in ms (VOXGATE_MAX_JOB_PAUSE_MS). */
  maxPauseMs: number;
  /** Longest text of one segment or item, in characters (VOXGATE_MAX_TEXT_CHARS). */
  maxTextChars: number;
}

/** The gateway settings that bound render and batch jobs, by setting name (README: Settings). */
export interface RenderSettings {
  /** Segments or items of one job synthesized at once. */
  renderConcurrency: number;
  /** Most segments in a render script. */
  maxRenderSegments: number;
  /** Most items in a batch job. */
  maxBatchItems: number;
  /** Longest pause after a segment, in ms. */
  maxJobPauseMs: number;
  /** Longest text of one segment or item, in characters. */
  maxTextChars: number;
}

/** {@link RenderLimits} from the settings of the same meaning. */
export function renderLimitsFromSettings(settings: RenderSettings): RenderLimits {
  return {
    concurrency: settings.renderConcurrency,
    maxSegments: settings.maxRenderSegments,
    maxBatchItems: settings.maxBatchItems,
    maxPauseMs: settings.maxJobPauseMs,
    maxTextChars: settings.maxTextChars,
  };
}

/**
 * What the executors call. The clients run over the gateway's in-process transport
 * (`services/gateway/in-process-transport.ts`), so every segment gets the same validation,
 * cloned-voice resolution, routing and failover as a caller's own request.
 */
export interface JobExecutorDeps {
  /** TtsService client (in process). */
  tts: Client<typeof TtsService>;
  /** VoiceService client (in process). */
  voices: Client<typeof VoiceService>;
  /** Render and batch limits. */
  limits: RenderLimits;
  /**
   * Bit rates and resampler quality of render outputs: the gateway's `audio` options, the same
   * that streamed calls get. @default the encoders' own (see `AudioContainerOptions`)
   */
  audio?: AudioContainerOptions | undefined;
}

/**
 * Builds the context values of one in-process call made for `job`: the job's owner as the
 * principal (see {@link JobContext.owner}) and a request id `<jobId>.<suffix>` that shows up in
 * gateway and agent logs, so each backend call can be traced to its job and segment.
 */
export function jobCallContext(job: Job, context: JobContext, suffix: string): ContextValues {
  const requestId = `${job.id}.${suffix}`;
  return createContextValues().set(kCallContext, {
    requestId,
    principal: context.owner,
    log: context.log.child({ requestId }),
  });
}
