import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import {
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
 * Checks a client request against the limits and turns it into the backend request.
 *
 * @throws ConnectError INVALID_ARGUMENT naming the field and the limit; UNIMPLEMENTED for features
 *   that arrive later (clone prompts) and encodings without an encoder (FLAC, Opus).
 */
export function toBackendRequest(
  request: SynthesizeSpeechRequest,
  limits: SynthesisLimits,
): SynthesizeRequest {
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
  if (request.promptId) {
    throw new ConnectError(
      "clone prompts need the prompt store, which this gateway does not run yet",
      Code.Unimplemented,
    );
  }
  return create(SynthesizeRequestSchema, {
    text: request.text,
    voice: request.voice ? { kind: { case: "presetId", value: request.voice } } : undefined,
    engine: request.engine,
    language: request.language,
    speed: request.speed,
    instructions: request.instructions,
    encoding: AudioEncoding.PCM,
    sampleRateHz: request.sampleRateHz,
    params: request.params,
  });
}
