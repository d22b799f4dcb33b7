/**
 * The job contract between voxgate and a serverless text-to-speech worker: what goes in a job's
 * `input` and what its handler returns as `output`. The README section "Serverless backends
 * (RunPod)" documents it for worker authors.
 */
import { z } from "zod";
import type { SynthesizeRequest } from "../../../gen/voxgate/v1/gpu_backend_pb.js";

/** The only encoding a worker returns; the gateway encodes containers itself. */
export const JOB_ENCODING = "pcm_s16le";

/** A synthesis job's `input`. */
export interface TtsJobInput {
  /** Text to speak. */
  text: string;
  /** Preset voice id; empty means the engine default. */
  voice: string;
  /** Rate multiplier, 1 = normal. */
  speed: number;
  /** BCP-47 tag; empty lets the engine decide. */
  language: string;
  /** Engine id; empty means the worker's default. */
  engine: string;
  /** Style directions for engines that take them. */
  instructions: string;
  /** Preferred sample rate; 0 means the engine's native rate. */
  sample_rate_hz: number;
  /** Always {@link JOB_ENCODING}. */
  encoding: typeof JOB_ENCODING;
  /** Engine-specific settings. */
  params: Record<string, string>;
  /** A cloned voice: a short-lived signed URL of the prompt bytes, their digest and model. */
  clone_prompt?: {
    url: string;
    digest: string;
    size_bytes: number;
    model: { family: string; size: string };
  };
}

/** Builds a job's input from a backend synthesis request. */
export function toTtsJobInput(request: SynthesizeRequest): TtsJobInput {
  const voice = request.voice?.kind;
  const input: TtsJobInput = {
    text: request.text,
    voice: voice?.case === "presetId" ? voice.value : "",
    speed: request.speed > 0 ? request.speed : 1,
    language: request.language,
    engine: request.engine,
    instructions: request.instructions,
    sample_rate_hz: request.sampleRateHz,
    encoding: JOB_ENCODING,
    params: { ...request.params },
  };
  if (voice?.case === "clonePrompt") {
    input.clone_prompt = {
      url: voice.value.url,
      digest: voice.value.digest,
      size_bytes: Number(voice.value.sizeBytes),
      model: { family: voice.value.model?.family ?? "", size: voice.value.model?.size ?? "" },
    };
  }
  return input;
}

/** Parses a job's `input` (what a worker does with it). */
export const ttsJobInputSchema = z.object({
  text: z.string().min(1),
  voice: z.string().default(""),
  speed: z.number().positive().default(1),
  language: z.string().default(""),
  engine: z.string().default(""),
  instructions: z.string().default(""),
  sample_rate_hz: z.number().int().min(0).default(0),
  encoding: z.literal(JOB_ENCODING).default(JOB_ENCODING),
  params: z.record(z.string(), z.string()).default({}),
  clone_prompt: z
    .object({
      url: z.string(),
      digest: z.string(),
      size_bytes: z.number(),
      model: z.object({ family: z.string(), size: z.string() }),
    })
    .optional(),
});

/** A synthesis job's `output`. */
export interface TtsJobOutput {
  /** The PCM, base64 (standard alphabet, padded). */
  audio_base64: string;
  /** Always {@link JOB_ENCODING}. */
  encoding: typeof JOB_ENCODING;
  /** Samples per second. */
  sample_rate_hz: number;
  /** Interleaved channels. */
  channels: number;
  /** Engine that spoke. */
  engine?: string;
  /** Model that spoke. */
  model?: { family: string; size: string };
}

const outputSchema = z.object({
  audio_base64: z.string(),
  encoding: z.literal(JOB_ENCODING, { error: `encoding must be "${JOB_ENCODING}"` }),
  sample_rate_hz: z.number().int().min(1).max(384_000),
  channels: z.number().int().min(1).max(8),
  engine: z.string().optional(),
  model: z.object({ family: z.string(), size: z.string().default("") }).optional(),
});

/** A job output decoded: the PCM and its format. */
export interface DecodedTtsOutput {
  /** Raw PCM, a whole number of frames. */
  pcm: Uint8Array;
  /** Samples per second. */
  sampleRateHz: number;
  /** Interleaved channels. */
  channels: number;
  /** Engine that spoke, or empty. */
  engine: string;
  /** Model that spoke, when the worker says. */
  model: { family: string; size: string } | undefined;
}

/** Raised when a worker's output breaks the job contract. */
export class TtsJobOutputError extends Error {
  override readonly name = "TtsJobOutputError";
}

/** Returns whether `err` is a {@link TtsJobOutputError}. */
export function isTtsJobOutputError(err: unknown): err is TtsJobOutputError {
  return err instanceof TtsJobOutputError;
}

/**
 * Checks and decodes a job's output.
 *
 * @throws TtsJobOutputError when the output breaks the contract, decodes to more than
 *   `maxAudioBytes`, or is not a whole number of frames.
 */
export function decodeTtsJobOutput(output: unknown, maxAudioBytes: number): DecodedTtsOutput {
  const parsed = outputSchema.safeParse(output);
  if (!parsed.success) {
    const rule = parsed.error.issues
      .map((i) => `${i.path.join(".") || "output"}: ${i.message}`)
      .join("; ");
    throw new TtsJobOutputError(`the worker's output breaks the job contract: ${rule}`);
  }
  const { audio_base64: base64, sample_rate_hz, channels, engine, model } = parsed.data;
  // Checked before decoding, so an oversized answer never becomes a second large buffer.
  const decodedBytes = Math.floor((base64.length * 3) / 4);
  if (decodedBytes > maxAudioBytes + 2) {
    throw new TtsJobOutputError(
      `the worker's audio is about ${decodedBytes} bytes, over the limit of ${maxAudioBytes} (maxAudioBytes)`,
    );
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length % 4 !== 0) {
    throw new TtsJobOutputError("the worker's audio_base64 is not valid base64");
  }
  const pcm = new Uint8Array(Buffer.from(base64, "base64"));
  if (pcm.byteLength > maxAudioBytes) {
    throw new TtsJobOutputError(
      `the worker's audio is ${pcm.byteLength} bytes, over the limit of ${maxAudioBytes} (maxAudioBytes)`,
    );
  }
  if (pcm.byteLength % (2 * channels) !== 0) {
    throw new TtsJobOutputError(
      `the worker's audio is ${pcm.byteLength} bytes, not a whole number of ${channels}-channel 16-bit frames`,
    );
  }
  return {
    pcm,
    sampleRateHz: sample_rate_hz,
    channels,
    engine: engine ?? "",
    model: model ? { family: model.family, size: model.size } : undefined,
  };
}
