import { createHash } from "node:crypto";
import { setImmediate } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { COMPRESSED_CONTENT_TYPES, type CompressedFormat } from "../../audio/compressed-formats.js";
import { createMp3Encoder, MP3_SAMPLE_RATES_HZ } from "../../audio/mp3-encoder.js";
import { loadResamplerFactory, type PcmResampler, resampledFrames } from "../../audio/resampler.js";
import { encodeWavHeader, WAV_UNKNOWN_SIZE } from "../../audio/wav.js";
import type { BlobStore } from "../../object-store/blob-store.js";
import type { AudioContainerOptions } from "../../tts/audio-container.js";
import type { RenderFormat } from "./render-plan.js";
import type { PcmLayout } from "./segment-checkpoints.js";

/** One piece of the joined audio: a stored segment, then the silence after it. */
export interface JoinPart {
  /** Key of the segment's PCM; undefined for a segment that is only a pause. */
  key: string | undefined;
  /** Its size, in bytes (checked while reading). */
  sizeBytes: number;
  /**
   * Sample rate of the stored PCM, in Hz, when it differs from the output's: it is converted
   * while joining (SpeexDSP, as `sample_rate_hz` on a call). Undefined: the output's rate.
   */
  sampleRateHz?: number | undefined;
  /** Frames of silence after it, at the output's rate. */
  silenceFrames: number;
}

/** Options of {@link writeJoinedOutput}. */
export interface JoinOptions {
  /** Store holding the parts and receiving the output. */
  blobs: BlobStore;
  /** Output key. */
  key: string;
  /** Parts in order. */
  parts: readonly JoinPart[];
  /** Rate and channels of the output; pick the rate with {@link renderOutputRate}. */
  layout: PcmLayout;
  /** Container. */
  format: RenderFormat;
  /**
   * Bit rates and resampler quality, the same options streamed calls get (`options.audio` of
   * the gateway); missing keys take the encoders' own rates and quality
   */
  audio?: AudioContainerOptions | undefined;
  /** Stops reading and writing; no partial output is left (puts are all-or-nothing). */
  signal: AbortSignal;
}

/** What {@link writeJoinedOutput} stored. */
export interface JoinedOutput {
  /** MIME type. */
  contentType: string;
  /** Output bytes. */
  sizeBytes: number;
  /** sha256 of the output bytes, lowercase hex. */
  digest: string;
  /** Playing time of the joined PCM, in ms (rounded). */
  durationMs: number;
}

/** Metadata key of the output's duration, so a re-run can describe an output it finds. */
export const DURATION_METADATA_KEY = "duration-ms";

/** Largest block of zeros yielded at once for silence, in bytes. */
const SILENCE_CHUNK_BYTES = 64 * 1024;
/** PCM handed to an encoder at once before yielding to the event loop, in ms of audio. */
const ENCODE_SLICE_MS = 250;

/**
 * The rate a render in `format` is joined at when its audio is at `sampleRateHz`: the same, or
 * for Opus and AAC the next rate their codec carries (Opus: 8, 12, 16, 24 or 48 kHz), so each
 * segment is converted at most once. Loads the codecs' module only for those two formats.
 */
export async function renderOutputRate(
  format: RenderFormat,
  sampleRateHz: number,
): Promise<number> {
  if (format !== "opus" && format !== "aac") return sampleRateHz;
  const { codecSampleRate } = await import("../../audio/compressed-encoder.js");
  return codecSampleRate(format, sampleRateHz);
}

/**
 * Joins stored segment PCM and exact silences into one WAV (exact sizes in the header), MP3,
 * Ogg Opus, FLAC or AAC (ADTS) object, streaming: memory stays at a few chunks whatever the
 * length. Segments stored at another rate than `layout`'s are converted on the way. The
 * compressed formats go through the encoders streamed calls use (`services/audio`); a FLAC
 * output names its total samples. The bytes are hashed on their way to the store.
 *
 * @throws ConnectError FAILED_PRECONDITION when the audio does not fit the container (WAV's 4 GiB,
 *   MP3's sample rates and channel counts, Opus and AAC's 2 channels, FLAC's 8); INTERNAL when a
 *   stored segment's size changed.
 */
export async function writeJoinedOutput(options: JoinOptions): Promise<JoinedOutput> {
  const { blobs, parts, layout, signal } = options;
  const audio = options.audio ?? {};
  const blockAlign = layout.channels * 2;
  const totalFrames = parts.reduce(
    (sum, part) =>
      sum +
      resampledFrames(
        part.sizeBytes / blockAlign,
        part.sampleRateHz ?? layout.sampleRateHz,
        layout.sampleRateHz,
      ) +
      part.silenceFrames,
    0,
  );
  const pcmBytes = totalFrames * blockAlign;
  const durationMs = Math.round((totalFrames / layout.sampleRateHz) * 1000);
  const pcm = () => joinedPcm(blobs, parts, layout, audio.resamplerQuality, signal);
  let contentType: string;
  let body: AsyncIterable<Uint8Array>;
  if (options.format === "wav") {
    if (pcmBytes + 36 >= WAV_UNKNOWN_SIZE) {
      throw new ConnectError(
        `the render is ${pcmBytes} bytes of PCM, more than a WAV file can hold (4 GiB); use MP3, OPUS, FLAC or AAC, or a shorter script`,
        Code.FailedPrecondition,
      );
    }
    contentType = "audio/wav";
    const header = encodeWavHeader({ ...layout, dataBytes: pcmBytes });
    body = (async function* () {
      yield header;
      yield* pcm();
    })();
  } else if (options.format === "mp3") {
    if (
      !MP3_SAMPLE_RATES_HZ.includes(layout.sampleRateHz) ||
      (layout.channels !== 1 && layout.channels !== 2)
    ) {
      throw new ConnectError(
        `MP3 cannot carry the segments' ${layout.sampleRateHz} Hz ${layout.channels}-channel audio ` +
          `(it needs 1 or 2 channels at ${MP3_SAMPLE_RATES_HZ.join(", ")} Hz); render to WAV`,
        Code.FailedPrecondition,
      );
    }
    contentType = "audio/mpeg";
    body = encodeMp3(pcm(), layout, totalFrames, audio.mp3BitrateKbps);
  } else {
    const maxChannels = options.format === "flac" ? 8 : 2;
    if (layout.channels > maxChannels) {
      throw new ConnectError(
        `${options.format} is encoded here for 1 to ${maxChannels} channels; the segments have ` +
          `${layout.channels}: render to WAV`,
        Code.FailedPrecondition,
      );
    }
    contentType = COMPRESSED_CONTENT_TYPES[options.format];
    body = encodeCompressed(pcm(), layout, options.format, totalFrames, audio);
  }
  const hash = createHash("sha256");
  let sizeBytes = 0;
  const hashed = (async function* () {
    for await (const chunk of body) {
      hash.update(chunk);
      sizeBytes += chunk.byteLength;
      yield chunk;
    }
  })();
  await blobs.put(options.key, hashed, {
    contentType,
    metadata: { [DURATION_METADATA_KEY]: String(durationMs) },
    signal,
  });
  return { contentType, sizeBytes, digest: hash.digest("hex"), durationMs };
}

/**
 * Describes an output object a previous attempt stored (it crashed before the job was marked
 * done): reads it once to hash it. Undefined when there is none.
 */
export async function describeStoredOutput(
  blobs: BlobStore,
  key: string,
  signal: AbortSignal,
): Promise<JoinedOutput | undefined> {
  const info = await blobs.stat(key);
  if (!info) return undefined;
  const hash = createHash("sha256");
  let sizeBytes = 0;
  for await (const chunk of await blobs.get(key, { signal })) {
    hash.update(chunk);
    sizeBytes += chunk.byteLength;
  }
  return {
    contentType: info.contentType,
    sizeBytes,
    digest: hash.digest("hex"),
    durationMs: Number(info.metadata[DURATION_METADATA_KEY] ?? 0) || 0,
  };
}

/**
 * The joined PCM at `layout`'s rate: each part's stored bytes (converted when stored at another
 * rate), then its silence, in whole frames.
 */
async function* joinedPcm(
  blobs: BlobStore,
  parts: readonly JoinPart[],
  layout: PcmLayout,
  resamplerQuality: number | undefined,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const blockAlign = layout.channels * 2;
  const zeros = new Uint8Array(SILENCE_CHUNK_BYTES - (SILENCE_CHUNK_BYTES % blockAlign));
  for (const part of parts) {
    let read = 0;
    if (part.key !== undefined) {
      const fromHz = part.sampleRateHz ?? layout.sampleRateHz;
      let resampler: PcmResampler | undefined;
      if (fromHz !== layout.sampleRateHz) {
        resampler = (await loadResamplerFactory()).create({
          fromHz,
          toHz: layout.sampleRateHz,
          channels: layout.channels,
          ...(resamplerQuality !== undefined ? { quality: resamplerQuality } : {}),
        });
      }
      try {
        const stored = countBytes(await blobs.get(part.key, { signal }), (n) => {
          read += n;
        });
        if (!resampler) {
          yield* stored;
        } else {
          for await (const frames of wholeFrames(stored, blockAlign)) {
            const converted = resampler.push(frames);
            if (converted.byteLength > 0) yield converted;
          }
          const last = resampler.end();
          if (last.byteLength > 0) yield last;
        }
      } finally {
        resampler?.dispose();
      }
    }
    if (read !== part.sizeBytes) {
      throw new ConnectError(
        `segment object ${part.key ?? "(pause)"} has ${read} bytes, expected ${part.sizeBytes}`,
        Code.Internal,
      );
    }
    for (let left = part.silenceFrames * blockAlign; left > 0; left -= zeros.byteLength) {
      yield left >= zeros.byteLength ? zeros : zeros.subarray(0, left);
    }
  }
}

/** Passes chunks through, reporting each one's size. */
async function* countBytes(
  chunks: AsyncIterable<Uint8Array>,
  count: (bytes: number) => void,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    count(chunk.byteLength);
    yield chunk;
  }
}

/**
 * Re-cuts chunks of any alignment (store chunks need not end on a frame) into runs of whole
 * frames, at most `maxBytes` each when given; the odd bytes wait for the next chunk.
 */
async function* wholeFrames(
  chunks: AsyncIterable<Uint8Array>,
  blockAlign: number,
  maxBytes = Number.POSITIVE_INFINITY,
): AsyncGenerator<Uint8Array> {
  let carry = new Uint8Array(0);
  for await (const chunk of chunks) {
    const joined = carry.byteLength > 0 ? Buffer.concat([carry, chunk]) : chunk;
    const whole = joined.byteLength - (joined.byteLength % blockAlign);
    carry = joined.slice(whole);
    for (let offset = 0; offset < whole; offset += maxBytes) {
      yield joined.subarray(offset, Math.min(whole, offset + maxBytes));
    }
  }
}

/** Bytes of {@link ENCODE_SLICE_MS} of audio in `layout`, whole frames. */
function sliceBytes(layout: PcmLayout): number {
  return Math.ceil((layout.sampleRateHz * ENCODE_SLICE_MS) / 1000) * layout.channels * 2;
}

/**
 * Encodes PCM chunks of any alignment to MP3 frames, in slices that let other work run. The
 * length is known before the first byte, so the MP3 starts with a LAME Info frame and decoders
 * that read it play exactly `totalPcmFrames` (no encoder delay, no padding).
 */
async function* encodeMp3(
  pcm: AsyncIterable<Uint8Array>,
  layout: PcmLayout,
  totalPcmFrames: number,
  bitrateKbps: number | undefined,
): AsyncGenerator<Uint8Array> {
  const encoder = createMp3Encoder({
    sampleRateHz: layout.sampleRateHz,
    channels: layout.channels,
    totalPcmFrames,
    ...(bitrateKbps ? { bitrateKbps } : {}),
  });
  for await (const slice of wholeFrames(pcm, layout.channels * 2, sliceBytes(layout))) {
    const frames = encoder.encode(slice);
    if (frames.byteLength > 0) yield frames;
    await setImmediate();
  }
  const tail = encoder.flush();
  if (tail.byteLength > 0) yield tail;
}

/**
 * Encodes PCM chunks of any alignment to Ogg Opus, FLAC or AAC with the streamed calls' encoder
 * (`createCompressedEncoder`, loaded on first use), in slices that let other work run. The
 * encoder (for FLAC and AAC a worker thread) is freed when the store stops reading early.
 */
async function* encodeCompressed(
  pcm: AsyncIterable<Uint8Array>,
  layout: PcmLayout,
  format: CompressedFormat,
  totalPcmFrames: number,
  audio: AudioContainerOptions,
): AsyncGenerator<Uint8Array> {
  const { createCompressedEncoder } = await import("../../audio/compressed-encoder.js");
  const encoder = await createCompressedEncoder({
    format,
    sampleRateHz: layout.sampleRateHz,
    channels: layout.channels,
    bitrateKbps:
      format === "opus"
        ? audio.opusBitrateKbps
        : format === "aac"
          ? audio.aacBitrateKbps
          : undefined,
    resamplerQuality: audio.resamplerQuality,
    totalPcmFrames,
  });
  let ended = false;
  try {
    for await (const slice of wholeFrames(pcm, layout.channels * 2, sliceBytes(layout))) {
      const bytes = await encoder.encode(slice);
      if (bytes.byteLength > 0) yield bytes;
      await setImmediate();
    }
    ended = true;
    const tail = await encoder.end();
    if (tail.byteLength > 0) yield tail;
  } finally {
    if (!ended) await encoder.cancel();
  }
}
