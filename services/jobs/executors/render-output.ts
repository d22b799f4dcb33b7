import { createHash } from "node:crypto";
import { setImmediate } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { createMp3Encoder, MP3_SAMPLE_RATES_HZ } from "../../audio/mp3-encoder.js";
import { encodeWavHeader, WAV_UNKNOWN_SIZE } from "../../audio/wav.js";
import type { BlobStore } from "../../object-store/blob-store.js";
import type { RenderFormat } from "./render-plan.js";
import type { PcmLayout } from "./segment-checkpoints.js";

/** One piece of the joined audio: a stored segment, then the silence after it. */
export interface JoinPart {
  /** Key of the segment's PCM; undefined for a segment that is only a pause. */
  key: string | undefined;
  /** Its size, in bytes (checked while reading). */
  sizeBytes: number;
  /** Frames of silence after it. */
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
  /** Layout shared by every part. */
  layout: PcmLayout;
  /** Container. */
  format: RenderFormat;
  /** Constant MP3 bit rate, in kbit/s. @default 64 per channel */
  mp3BitrateKbps?: number | undefined;
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
/** PCM handed to the MP3 encoder at once before yielding to the event loop, in ms of audio. */
const MP3_SLICE_MS = 250;

/**
 * Joins stored segment PCM and exact silences into one WAV (exact sizes in the header) or MP3
 * object, streaming: memory stays at a few chunks whatever the length. The bytes are hashed on
 * their way to the store.
 *
 * @throws ConnectError FAILED_PRECONDITION when the audio does not fit the container (WAV's 4 GiB,
 *   MP3's sample rates and channel counts); INTERNAL when a stored segment's size changed.
 */
export async function writeJoinedOutput(options: JoinOptions): Promise<JoinedOutput> {
  const { blobs, parts, layout, signal } = options;
  const blockAlign = layout.channels * 2;
  const pcmBytes = parts.reduce((sum, p) => sum + p.sizeBytes + p.silenceFrames * blockAlign, 0);
  const durationMs = Math.round((pcmBytes / blockAlign / layout.sampleRateHz) * 1000);
  let contentType: string;
  let body: AsyncIterable<Uint8Array>;
  if (options.format === "wav") {
    if (pcmBytes + 36 >= WAV_UNKNOWN_SIZE) {
      throw new ConnectError(
        `the render is ${pcmBytes} bytes of PCM, more than a WAV file can hold (4 GiB); use MP3 or a shorter script`,
        Code.FailedPrecondition,
      );
    }
    contentType = "audio/wav";
    const header = encodeWavHeader({ ...layout, dataBytes: pcmBytes });
    body = (async function* () {
      yield header;
      yield* joinedPcm(blobs, parts, blockAlign, signal);
    })();
  } else {
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
    body = encodeMp3(
      joinedPcm(blobs, parts, blockAlign, signal),
      layout,
      pcmBytes / blockAlign,
      options.mp3BitrateKbps,
    );
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

/** The joined PCM: each part's stored bytes, then its silence, in whole frames. */
async function* joinedPcm(
  blobs: BlobStore,
  parts: readonly JoinPart[],
  blockAlign: number,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const zeros = new Uint8Array(SILENCE_CHUNK_BYTES - (SILENCE_CHUNK_BYTES % blockAlign));
  for (const part of parts) {
    let read = 0;
    if (part.key !== undefined) {
      for await (const chunk of await blobs.get(part.key, { signal })) {
        read += chunk.byteLength;
        yield chunk;
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
  const blockAlign = layout.channels * 2;
  const sliceBytes = Math.ceil((layout.sampleRateHz * MP3_SLICE_MS) / 1000) * blockAlign;
  // Store chunks need not end on a frame: the odd bytes wait for the next chunk.
  let carry = new Uint8Array(0);
  for await (const chunk of pcm) {
    const joined = carry.byteLength > 0 ? Buffer.concat([carry, chunk]) : chunk;
    const whole = joined.byteLength - (joined.byteLength % blockAlign);
    carry = joined.slice(whole);
    for (let offset = 0; offset < whole; offset += sliceBytes) {
      const frames = encoder.encode(joined.subarray(offset, Math.min(whole, offset + sliceBytes)));
      if (frames.byteLength > 0) yield frames;
      await setImmediate();
    }
  }
  const tail = encoder.flush();
  if (tail.byteLength > 0) yield tail;
}
