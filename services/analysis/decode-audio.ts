/**
 * Turns uploaded audio bytes into the 16-bit PCM the analyzer reads. Only WAV is decoded here: no
 * MP3, FLAC or Ogg decoder is installed, so other formats are refused with a clear error.
 */
import { isWavFormatError } from "../audio/wav.js";
import type { PcmAudio } from "./audio-analysis.js";
import { decodeWavToInt16 } from "./wav-reader.js";

/** MIME types taken as WAV (parameters such as `; codecs=1` are ignored). */
export const WAV_CONTENT_TYPES: readonly string[] = [
  "audio/wav",
  "audio/x-wav",
  "audio/wave",
  "audio/vnd.wave",
];

/**
 * Thrown by {@link decodeAudioForAnalysis} for audio it cannot read: a format other than WAV, or
 * bytes that are not a WAV file it decodes. The caller maps it to INVALID_ARGUMENT.
 */
export class AudioDecodeError extends Error {
  override name = "AudioDecodeError";
  /** The content type the caller gave. */
  readonly contentType: string;

  /** Creates the error; `options.cause` keeps the underlying parse failure. */
  constructor(contentType: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.contentType = contentType;
  }
}

/** Reports whether `error` is an {@link AudioDecodeError}. */
export function isAudioDecodeError(error: unknown): error is AudioDecodeError {
  return error instanceof AudioDecodeError;
}

/**
 * Decodes `bytes` labelled `contentType` to interleaved 16-bit PCM for `analyzeAudio`.
 *
 * Reads WAV with integer PCM (8, 16, 24, 32 bits) or IEEE float (32, 64 bits), any channel count
 * and rate; wider samples are reduced to 16 bits. An empty content type means "look at the bytes".
 * Throws {@link AudioDecodeError} for any other content type ("analysis reads WAV; got
 * audio/mpeg") and for bytes that are not such a WAV file or hold no whole frame.
 */
export function decodeAudioForAnalysis(bytes: Uint8Array, contentType: string): PcmAudio {
  const mediaType = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (mediaType !== "" && !WAV_CONTENT_TYPES.includes(mediaType)) {
    throw new AudioDecodeError(contentType, `analysis reads WAV; got ${printable(mediaType)}`);
  }
  let pcm: PcmAudio;
  try {
    pcm = decodeWavToInt16(bytes);
  } catch (err) {
    if (isWavFormatError(err)) {
      throw new AudioDecodeError(contentType, `analysis reads WAV; ${err.message}`, { cause: err });
    }
    throw err;
  }
  if (pcm.samples.length === 0) {
    throw new AudioDecodeError(contentType, "analysis reads WAV; the file holds no audio frames");
  }
  return pcm;
}

// Content types come from callers; keep messages short and printable.
function printable(text: string): string {
  return text.slice(0, 100).replace(/[^\x20-\x7e]/g, "?");
}
