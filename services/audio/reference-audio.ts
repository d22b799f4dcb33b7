/**
 * Checks reference audio uploaded for voice cloning before anything else touches it: size, real
 * type by magic bytes (not the caller's label), and duration from the container's header, without
 * decoding the audio.
 */
import { Code } from "@connectrpc/connect";
import type { IAudioMetadata } from "music-metadata";
import { readWavLayout } from "./wav.js";

/** Content types {@link inspectReferenceAudio} accepts, as it reports them. */
export type ReferenceAudioType = "audio/wav" | "audio/mpeg" | "audio/flac" | "audio/ogg";

/** Limits applied by {@link inspectReferenceAudio}. */
export interface ReferenceAudioLimits {
  /** Largest upload, in bytes (`VOXGATE_MAX_REFERENCE_BYTES`). */
  maxBytes: number;
  /** Longest reference, in ms (`VOXGATE_MAX_REFERENCE_SECONDS` x 1000). */
  maxDurationMs: number;
  /**
   * Shortest reference, in ms.
   * @default 0
   */
  minDurationMs?: number;
}

/** What {@link inspectReferenceAudio} learned about accepted audio. */
export interface ReferenceAudioInfo {
  /** The type found by magic bytes. */
  contentType: ReferenceAudioType;
  /** Playing time from the header, in ms (rounded). */
  durationMs: number;
  /** Samples per second, when the header says. */
  sampleRateHz?: number;
  /** Channels, when the header says. */
  channels?: number;
}

/**
 * Thrown by {@link inspectReferenceAudio} for audio it refuses; `code` is the Connect code the RPC
 * edge answers with (`new ConnectError(err.message, err.code)`).
 */
export class ReferenceAudioError extends Error {
  override name = "ReferenceAudioError";
  /** `RESOURCE_EXHAUSTED` for size, `INVALID_ARGUMENT` for everything else. */
  readonly code: Code;

  /** Creates the error; the message names the limit or the accepted formats. */
  constructor(code: Code, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** Reports whether `error` is a {@link ReferenceAudioError}. */
export function isReferenceAudioError(error: unknown): error is ReferenceAudioError {
  return error instanceof ReferenceAudioError;
}

const ACCEPTED = "WAV, MP3, FLAC or OGG";
// file-type's extension for each accepted container; Ogg carries Vorbis, Opus, Speex or FLAC.
const TYPE_BY_EXTENSION: Record<string, ReferenceAudioType> = {
  wav: "audio/wav",
  mp3: "audio/mpeg",
  flac: "audio/flac",
  ogg: "audio/ogg",
  oga: "audio/ogg",
  opus: "audio/ogg",
  spx: "audio/ogg",
};

/**
 * Checks reference audio and reads its duration from the header.
 *
 * In order: size (over `maxBytes`: `RESOURCE_EXHAUSTED` naming `VOXGATE_MAX_REFERENCE_BYTES`;
 * empty: `INVALID_ARGUMENT`); type by magic bytes with `file-type`, accepting WAV, MP3, FLAC and
 * Ogg only, whatever the caller's label says (anything else, e.g. a PNG labelled audio/wav:
 * `INVALID_ARGUMENT` naming what was found and what is accepted); duration without decoding
 * samples: for WAV from the `fmt ` and `data` chunk sizes, for the others with music-metadata from
 * their headers (frame scan for MP3 without a Xing/VBRI header). A duration over `maxDurationMs`
 * is refused naming `VOXGATE_MAX_REFERENCE_SECONDS`, and one below `minDurationMs` too; so is a
 * WAV whose header declares more audio than the file holds (a truncated or forged file: a 10-hour
 * header on a small body is refused by duration first). Throws only {@link ReferenceAudioError}.
 */
export async function inspectReferenceAudio(
  bytes: Uint8Array,
  limits: ReferenceAudioLimits,
): Promise<ReferenceAudioInfo> {
  if (bytes.length > limits.maxBytes) {
    throw new ReferenceAudioError(
      Code.ResourceExhausted,
      `reference audio is ${bytes.length} bytes; the limit is ${limits.maxBytes} ` +
        "(max reference bytes: VOXGATE_MAX_REFERENCE_BYTES)",
    );
  }
  if (bytes.length === 0) {
    throw invalid("reference audio is empty");
  }
  // file-type and music-metadata take ~0.3-0.6 s to import; loaded on first use, so that importing
  // services/audio (the CLI does) stays cheap.
  const { fileTypeFromBuffer } = await import("file-type");
  const found = await fileTypeFromBuffer(bytes).catch(() => undefined);
  const contentType = found === undefined ? undefined : TYPE_BY_EXTENSION[found.ext];
  if (found === undefined || contentType === undefined) {
    const what = found === undefined ? "of no known type" : `${found.mime} (.${found.ext})`;
    throw invalid(`reference audio is ${what} by its magic bytes; accepted: ${ACCEPTED}`);
  }
  const info =
    contentType === "audio/wav" ? inspectWav(bytes) : await inspectCompressed(bytes, contentType);
  checkDuration(info.durationMs, limits);
  if (info.truncatedBy !== undefined) {
    throw invalid(
      `reference audio is truncated: its WAV header declares ${info.truncatedBy} bytes more audio than the file holds`,
    );
  }
  const { truncatedBy: _, ...result } = info;
  return result;
}

type Inspected = ReferenceAudioInfo & { truncatedBy?: number };

function inspectWav(bytes: Uint8Array): Inspected {
  let layout: ReturnType<typeof readWavLayout>;
  try {
    layout = readWavLayout(bytes);
  } catch (err) {
    throw invalid(`reference audio is not a readable WAV file: ${(err as Error).message}`, err);
  }
  const bytesPerSecond = (layout.sampleRateHz * layout.channels * layout.bitsPerSample) / 8;
  // The declared size, not the bytes present: a forged header must meet the duration cap.
  const declared = layout.declaredDataBytes ?? layout.dataBytes;
  const present = bytes.length - layout.dataOffset;
  const info: Inspected = {
    contentType: "audio/wav",
    durationMs: Math.round((declared / bytesPerSecond) * 1000),
    sampleRateHz: layout.sampleRateHz,
    channels: layout.channels,
  };
  if (declared > present) {
    info.truncatedBy = declared - present;
  }
  return info;
}

async function inspectCompressed(
  bytes: Uint8Array,
  contentType: ReferenceAudioType,
): Promise<Inspected> {
  const label = contentType.slice("audio/".length).toUpperCase();
  const { parseBuffer } = await import("music-metadata");
  let format: IAudioMetadata["format"];
  try {
    ({ format } = await parseBuffer(
      bytes,
      { mimeType: contentType, size: bytes.length },
      { duration: true, skipCovers: true, skipPostHeaders: true },
    ));
  } catch (err) {
    throw invalid(
      `reference audio is not a readable ${label} file: ${(err as Error).message}`,
      err,
    );
  }
  if (format.duration === undefined || !Number.isFinite(format.duration) || format.duration <= 0) {
    throw invalid(`reference audio is ${label} whose duration cannot be read from its headers`);
  }
  const info: Inspected = { contentType, durationMs: Math.round(format.duration * 1000) };
  if (format.sampleRate !== undefined) {
    info.sampleRateHz = format.sampleRate;
  }
  if (format.numberOfChannels !== undefined) {
    info.channels = format.numberOfChannels;
  }
  return info;
}

function checkDuration(durationMs: number, limits: ReferenceAudioLimits): void {
  if (durationMs > limits.maxDurationMs) {
    throw invalid(
      `reference audio lasts ${formatSeconds(durationMs)} s; the limit is ${formatSeconds(limits.maxDurationMs)} s ` +
        "(max reference seconds: VOXGATE_MAX_REFERENCE_SECONDS)",
    );
  }
  const minDurationMs = limits.minDurationMs ?? 0;
  if (durationMs < minDurationMs) {
    throw invalid(
      `reference audio lasts ${formatSeconds(durationMs)} s; at least ${formatSeconds(minDurationMs)} s is needed`,
    );
  }
}

function formatSeconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

function invalid(message: string, cause?: unknown): ReferenceAudioError {
  return new ReferenceAudioError(
    Code.InvalidArgument,
    message,
    cause === undefined ? undefined : { cause },
  );
}
