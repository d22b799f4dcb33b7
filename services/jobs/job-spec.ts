import { Code, ConnectError } from "@connectrpc/connect";
import type { CreateJobRequest } from "../../gen/voxgate/v1/job_pb.js";
import { checkSynthesisRequest } from "../tts/synthesis-request.js";

/** Limits a CreateJob request is held to; each is a gateway setting. */
export interface JobSpecLimits {
  /** Most segments of a render script (VOXGATE_MAX_RENDER_SEGMENTS). */
  maxRenderSegments: number;
  /** Most items of a batch (VOXGATE_MAX_BATCH_ITEMS). */
  maxBatchItems: number;
  /** Longest text of one segment or item, in characters (VOXGATE_MAX_TEXT_CHARS). */
  maxTextChars: number;
  /** Longest pause of a render segment, in ms (VOXGATE_MAX_JOB_PAUSE_MS). */
  maxJobPauseMs: number;
  /** Most labels on a job (VOXGATE_MAX_JOB_LABELS). */
  maxJobLabels: number;
}

const LABEL_KEY = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const MAX_LABEL_VALUE_CHARS = 256;
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
const MAX_VOICE_ID_CHARS = 256;

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/**
 * Checks a CreateJob request without looking anything up: a kind is set, every count, length and
 * pause is within its limit, labels and the request id are well formed. Executors may check more
 * (`JobExecutor.validate`).
 *
 * @throws ConnectError INVALID_ARGUMENT naming the field, the limit and its setting.
 * @returns the job kind (`JobSpec.kind.case`).
 */
export function checkCreateJobRequest(request: CreateJobRequest, limits: JobSpecLimits): string {
  if (request.requestId && !REQUEST_ID.test(request.requestId)) {
    throw invalid("request_id must be 1 to 128 printable ASCII characters without spaces");
  }
  const labels = Object.entries(request.labels);
  if (labels.length > limits.maxJobLabels) {
    throw invalid(
      `${labels.length} labels; the limit is ${limits.maxJobLabels} (VOXGATE_MAX_JOB_LABELS)`,
    );
  }
  for (const [key, value] of labels) {
    if (!LABEL_KEY.test(key)) {
      throw invalid(`label key "${key.slice(0, 80)}" must match [a-z0-9][a-z0-9_.-]{0,62}`);
    }
    if (value.length > MAX_LABEL_VALUE_CHARS) {
      throw invalid(`label "${key}" is longer than ${MAX_LABEL_VALUE_CHARS} characters`);
    }
  }
  const kind = request.spec?.kind;
  switch (kind?.case) {
    case "render": {
      const spec = kind.value;
      if (spec.segments.length === 0) throw invalid("render.segments is empty");
      if (spec.segments.length > limits.maxRenderSegments) {
        throw invalid(
          `render has ${spec.segments.length} segments; the limit is ${limits.maxRenderSegments} (VOXGATE_MAX_RENDER_SEGMENTS)`,
        );
      }
      checkPause("render.pause_between_ms", spec.pauseBetweenMs, limits);
      checkVoice("render.default_voice", spec.defaultVoice);
      if (spec.sampleRateHz !== 0 && !(spec.sampleRateHz >= 8000 && spec.sampleRateHz <= 192_000)) {
        throw invalid(`render.sample_rate_hz ${spec.sampleRateHz} is outside 8000..192000`);
      }
      spec.segments.forEach((segment, i) => {
        const field = `render.segments[${i}]`;
        if (segment.text.trim().length === 0 && segment.pauseAfterMs <= 0) {
          throw invalid(`${field}.text is empty and it has no pause`);
        }
        if (segment.text.length > limits.maxTextChars) {
          throw invalid(
            `${field}.text is ${segment.text.length} characters; the limit is ${limits.maxTextChars} (VOXGATE_MAX_TEXT_CHARS)`,
          );
        }
        if (segment.speed !== 0 && !(segment.speed >= 0.25 && segment.speed <= 4)) {
          throw invalid(`${field}.speed ${segment.speed} is outside 0.25..4`);
        }
        if (segment.instructions.length > limits.maxTextChars) {
          throw invalid(
            `${field}.instructions exceed ${limits.maxTextChars} characters (VOXGATE_MAX_TEXT_CHARS)`,
          );
        }
        checkVoice(`${field}.voice`, segment.voice);
        checkPause(`${field}.pause_after_ms`, segment.pauseAfterMs, limits);
      });
      return "render";
    }
    case "analyzeVoice": {
      if (!kind.value.voiceId) throw invalid("analyze_voice.voice_id is empty");
      checkVoice("analyze_voice.voice_id", kind.value.voiceId);
      return "analyzeVoice";
    }
    case "batch": {
      const items = kind.value.items;
      if (items.length === 0) throw invalid("batch.items is empty");
      if (items.length > limits.maxBatchItems) {
        throw invalid(
          `batch has ${items.length} items; the limit is ${limits.maxBatchItems} (VOXGATE_MAX_BATCH_ITEMS)`,
        );
      }
      items.forEach((item, i) => {
        try {
          checkSynthesisRequest(item, { maxTextChars: limits.maxTextChars });
        } catch (err) {
          const e = ConnectError.from(err);
          throw new ConnectError(`batch.items[${i}]: ${e.rawMessage}`, e.code);
        }
      });
      return "batch";
    }
    default:
      throw invalid("spec must set one kind: render, analyze_voice or batch");
  }
}

function checkPause(field: string, ms: number, limits: JobSpecLimits): void {
  if (ms < 0 || ms > limits.maxJobPauseMs) {
    throw invalid(
      `${field} ${ms} is outside 0..${limits.maxJobPauseMs} ms (VOXGATE_MAX_JOB_PAUSE_MS)`,
    );
  }
}

function checkVoice(field: string, voice: string): void {
  if (voice.length > MAX_VOICE_ID_CHARS) {
    throw invalid(`${field} is longer than ${MAX_VOICE_ID_CHARS} characters`);
  }
}
