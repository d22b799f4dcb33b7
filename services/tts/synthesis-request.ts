import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import {
  type ClonePromptRef,
  type SynthesizeRequest,
  SynthesizeRequestSchema,
} from "../../gen/voxgate/v1/gpu_backend_pb.js";
import type { SynthesizeSpeechRequest } from "../../gen/voxgate/v1/tts_pb.js";
import { isSupportedEncoding, unsupportedMessage } from "./audio-container.js";

/** Limits applied to client synthesis requests. */
export interface SynthesisLimits {
  /** Longest text, in characters (UTF-16 code units, as JavaScript counts). */
  maxTextChars: number;
}

/**
 * Checks a client request against the limits, without looking anything up.
 *
 * @throws ConnectError INVALID_ARGUMENT naming the field and the limit; UNIMPLEMENTED for
 *   encodings without an encoder (FLAC, Opus).
 */
export function checkSynthesisRequest(
  request: SynthesizeSpeechRequest,
  limits: SynthesisLimits,
): void {
  if (request.text.trim().length === 0) {
    throw new ConnectError("text is empty", Code.InvalidArgument);
  }
  if (request.text.length > limits.maxTextChars) {
    throw new ConnectError(
      `text is ${request.text.length} characters; the limit is ${limits.maxTextChars} ` +
        "(max text chars: VOXGATE_MAX_TEXT_CHARS). Split the text or use a render job",
      Code.InvalidArgument,
    );
  }
  if (request.speed !== 0 && !(request.speed >= 0.25 && request.speed <= 4)) {
    throw new ConnectError(`speed ${request.speed} is outside 0.25..4`, Code.InvalidArgument);
  }
  if (
    request.sampleRateHz !== 0 &&
    !(request.sampleRateHz >= 8000 && request.sampleRateHz <= 192_000)
  ) {
    throw new ConnectError(
      `sample_rate_hz ${request.sampleRateHz} is outside 8000..192000`,
      Code.InvalidArgument,
    );
  }
  if (!isSupportedEncoding(request.encoding)) {
    throw new ConnectError(unsupportedMessage(request.encoding), Code.Unimplemented);
  }
}

/**
 * Checks a client request against the limits and turns it into the backend request. A cloned
 * voice or `prompt_id`, resolved beforehand into `clonePrompt`, becomes the request's voice (a
 * reference by digest and model, never a URL); anything else stays a preset id.
 *
 * @throws ConnectError INVALID_ARGUMENT naming the field and the limit; UNIMPLEMENTED for
 *   encodings without an encoder (FLAC, Opus) and for `prompt_id` when no prompt was resolved
 *   (a gateway without a prompt store).
 */
export function toBackendRequest(
  request: SynthesizeSpeechRequest,
  limits: SynthesisLimits,
  clonePrompt?: ClonePromptRef,
): SynthesizeRequest {
  checkSynthesisRequest(request, limits);
  if ((request.promptId || request.promptName) && !clonePrompt) {
    throw new ConnectError(
      "prompt_id and prompt_name need the prompt store, which this gateway does not run",
      Code.Unimplemented,
    );
  }
  return create(SynthesizeRequestSchema, {
    text: request.text,
    voice: clonePrompt
      ? // The URL stays empty here: only serverless backends get one, signed by themselves.
        { kind: { case: "clonePrompt", value: { ...clonePrompt, url: "" } } }
      : request.voice
        ? { kind: { case: "presetId", value: request.voice } }
        : undefined,
    engine: request.engine,
    language: request.language,
    speed: request.speed,
    instructions: request.instructions,
    encoding: AudioEncoding.PCM,
    sampleRateHz: request.sampleRateHz,
    params: request.params,
    wordTimings: request.wordTimings,
  });
}
