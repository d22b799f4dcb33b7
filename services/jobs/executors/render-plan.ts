import { Code, ConnectError } from "@connectrpc/connect";
import { AudioEncoding } from "../../../gen/voxgate/v1/audio_pb.js";
import type { RenderJobSpec } from "../../../gen/voxgate/v1/job_pb.js";
import type { RenderLimits } from "./executor-deps.js";

/** One segment as the render executor runs it: the request fields and the silence after it. */
export interface PlannedSegment {
  /** Position in the script, from 0. */
  index: number;
  /** Text to speak; blank for a segment that is only a pause. */
  text: string;
  /** Voice id (segment's own, else the script's default; empty = the engine's default). */
  voice: string;
  /** Rate multiplier; 0 means 1.0. */
  speed: number;
  /** Style instructions for engines that take them. */
  instructions: string;
  /** Silence after the segment, in ms. */
  pauseAfterMs: number;
  /** Engine to route to; "" = any. */
  engine: string;
  /** Engine params passed through. */
  params: Record<string, string>;
}

/**
 * Output formats a render can produce; each is also the output object's file extension
 * (`output.opus` is Ogg Opus, RFC 7845's extension).
 */
export type RenderFormat = "wav" | "mp3" | "opus" | "flac" | "aac";

const RENDER_FORMATS = new Map<AudioEncoding, RenderFormat>([
  [AudioEncoding.UNSPECIFIED, "wav"],
  [AudioEncoding.WAV, "wav"],
  [AudioEncoding.MP3, "mp3"],
  [AudioEncoding.OPUS, "opus"],
  [AudioEncoding.FLAC, "flac"],
  [AudioEncoding.AAC, "aac"],
]);

/** A checked script. */
export interface RenderPlan {
  /** Segments in script order. */
  segments: PlannedSegment[];
  /** Output container. */
  format: RenderFormat;
  /**
   * Sample rate every segment must have, in Hz (TtsService converts them); 0 = the first spoken
   * segment's rate, the others converted to it while joining.
   */
  sampleRateHz: number;
}

/**
 * Checks a render script against the limits and resolves each segment's voice and pause.
 *
 * A segment's pause is its own `pause_after_ms` when set, else `pause_between_ms` — which, as its
 * name says, goes only *between* segments, never after the last one.
 *
 * @throws ConnectError INVALID_ARGUMENT naming the field and the limit (with its setting).
 */
export function planRender(spec: RenderJobSpec, limits: RenderLimits): RenderPlan {
  const invalid = (message: string) => new ConnectError(message, Code.InvalidArgument);
  const count = spec.segments.length;
  if (count === 0) throw invalid("render script has no segments");
  if (count > limits.maxSegments) {
    throw invalid(
      `render script has ${count} segments; the limit is ${limits.maxSegments} ` +
        "(max render segments: VOXGATE_MAX_RENDER_SEGMENTS)",
    );
  }
  const checkPause = (ms: number, field: string) => {
    if (ms < 0 || ms > limits.maxPauseMs) {
      throw invalid(
        `${field} is ${ms} ms; it must be 0..${limits.maxPauseMs} ` +
          "(max job pause: VOXGATE_MAX_JOB_PAUSE_MS)",
      );
    }
  };
  checkPause(spec.pauseBetweenMs, "pause_between_ms");
  if (spec.sampleRateHz !== 0 && !(spec.sampleRateHz >= 8000 && spec.sampleRateHz <= 192_000)) {
    throw invalid(`sample_rate_hz ${spec.sampleRateHz} is outside 8000..192000`);
  }
  const format = RENDER_FORMATS.get(spec.encoding);
  if (!format) {
    throw invalid(
      `encoding ${AudioEncoding[spec.encoding] ?? spec.encoding} is not available for renders; ` +
        "use WAV, MP3, OPUS, FLAC or AAC",
    );
  }
  const segments = spec.segments.map((segment, index): PlannedSegment => {
    const field = `segments[${index}]`;
    // A segment without text is a pure pause (it must have one), synthesized by no backend.
    if (segment.text.trim().length === 0 && segment.pauseAfterMs <= 0) {
      throw invalid(`${field}.text is empty and it has no pause`);
    }
    if (segment.text.length > limits.maxTextChars) {
      throw invalid(
        `${field}.text is ${segment.text.length} characters; the limit is ${limits.maxTextChars} ` +
          "(max text chars: VOXGATE_MAX_TEXT_CHARS). Split it into more segments",
      );
    }
    if (segment.speed !== 0 && !(segment.speed >= 0.25 && segment.speed <= 4)) {
      throw invalid(`${field}.speed ${segment.speed} is outside 0.25..4`);
    }
    checkPause(segment.pauseAfterMs, `${field}.pause_after_ms`);
    const pauseAfterMs =
      segment.pauseAfterMs > 0 ? segment.pauseAfterMs : index < count - 1 ? spec.pauseBetweenMs : 0;
    return {
      index,
      text: segment.text,
      voice: segment.voice || spec.defaultVoice,
      speed: segment.speed,
      instructions: segment.instructions,
      pauseAfterMs,
      engine: segment.engine,
      params: { ...segment.params },
    };
  });
  if (spec.sampleRateHz === 0 && segments.every((segment) => !hasSpeech(segment))) {
    throw invalid("a script of pauses only has no sample rate to take: set sample_rate_hz");
  }
  return { segments, format, sampleRateHz: spec.sampleRateHz };
}

/** Frames of silence for `ms` at `sampleRateHz`: round(ms × rate / 1000), the one rule for pauses. */
export function silenceFrames(ms: number, sampleRateHz: number): number {
  return Math.round((ms * sampleRateHz) / 1000);
}

/** Whether a segment is spoken (has text) rather than only a pause. */
export function hasSpeech(segment: PlannedSegment): boolean {
  return segment.text.trim().length > 0;
}
