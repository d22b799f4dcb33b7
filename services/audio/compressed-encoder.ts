/**
 * Streaming Ogg Opus, FLAC and AAC (ADTS) encoding, bound to `mediabunny` (MPL-2.0, pure
 * TypeScript muxers) in this one file. The codecs: libopus through `opusscript` (see
 * {@link OpusPacketEncoder}), libFLAC through `@mediabunny/flac-encoder` and FFmpeg's native AAC
 * encoder through `@mediabunny/aac-encoder` (WASM builds that run in a worker thread per stream).
 */
import { registerAacEncoder } from "@mediabunny/aac-encoder";
import { registerFlacEncoder } from "@mediabunny/flac-encoder";
import {
  AdtsOutputFormat,
  AudioSample,
  AudioSampleSource,
  FlacOutputFormat,
  OggOutputFormat,
  Output,
  registerEncoder,
  StreamTarget,
  type StreamTargetChunk,
} from "mediabunny";
import { COMPRESSED_CONTENT_TYPES, type CompressedFormat } from "./compressed-formats.js";
import { OPUS_SAMPLE_RATES_HZ, OpusPacketEncoder } from "./opus-packet-encoder.js";
import { loadResamplerFactory, type PcmResampler } from "./resampler.js";

/** Sample rates an AAC (MPEG-4 audio) stream can signal, in Hz. */
export const AAC_SAMPLE_RATES_HZ: readonly number[] = [
  8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000,
];

/**
 * Longest Ogg page, in seconds of audio. A page leaves only when complete, and a full page holds
 * 255 Opus packets (5.1 s): half a second keeps streaming latency low for about 6 % overhead
 * at 32 kbit/s.
 */
const OGG_PAGE_SECONDS = 0.5;

/** Highest sample rate FLAC's STREAMINFO holds, in Hz. */
const FLAC_MAX_SAMPLE_RATE_HZ = 655_350;

/** Default bit rates per channel, in kbit/s: clear speech at a small size. */
export const DEFAULT_COMPRESSED_KBPS_PER_CHANNEL: Readonly<Record<"opus" | "aac", number>> = {
  opus: 32,
  aac: 64,
};

/** Options of {@link createCompressedEncoder}. */
export interface CompressedEncoderOptions {
  /** Container and codec. */
  format: CompressedFormat;
  /** Sample rate of the input PCM, in Hz. */
  sampleRateHz: number;
  /** Interleaved channels of the input PCM: 1 or 2 (FLAC: up to 8). */
  channels: number;
  /** Bit rate of Opus and AAC, in kbit/s. @default {@link DEFAULT_COMPRESSED_KBPS_PER_CHANNEL} × channels */
  bitrateKbps?: number | undefined;
  /**
   * Writes a whole file instead of a stream: FLAC's STREAMINFO then carries the total length and
   * MD5 (written at the end, so nothing leaves before {@link CompressedStreamEncoder.end}).
   * @default false
   */
  whole?: boolean;
  /**
   * Length of the input, in frames, when it is known before the first byte (a render): a FLAC
   * stream's STREAMINFO then names its total samples, so players and `ffprobe` know its duration
   * without reading it all (a stream of unknown length says 0, "unknown"). Ignored by Opus and
   * AAC, whose containers carry the length as they go.
   */
  totalPcmFrames?: number | undefined;
  /** Quality of the resampler used when the codec cannot take the input rate. @default 7 */
  resamplerQuality?: number | undefined;
}

/** Encodes one stream of PCM; not reusable after {@link CompressedStreamEncoder.end}. */
export interface CompressedStreamEncoder {
  /** MIME type of the output. */
  readonly contentType: string;
  /**
   * Sample rate of the encoded audio, in Hz: the input's, or the next one the codec takes (Opus:
   * 8, 12, 16, 24 or 48 kHz; AAC: the MPEG-4 rates), converted on the way.
   */
  readonly sampleRateHz: number;
  /**
   * Encodes the next chunk (signed 16-bit little-endian, interleaved, whole frames) and resolves
   * with the container bytes completed so far, often none for a short chunk. Awaiting it is the
   * encoder's backpressure.
   */
  encode(pcm: Uint8Array): Promise<Uint8Array>;
  /** Encodes what is buffered, finishes the container and resolves with the last bytes. */
  end(): Promise<Uint8Array>;
  /** Abandons the stream and frees the codec (its worker thread). Idempotent. */
  cancel(): Promise<void>;
}

const EMPTY = new Uint8Array(0);

// mediabunny keeps a process-wide list of custom coders; register ours once, on first use.
let registered = false;
function registerCoders(): void {
  if (registered) return;
  registered = true;
  registerEncoder(OpusPacketEncoder);
  registerAacEncoder();
  registerFlacEncoder();
}

/** The rate `format` encodes input of `sampleRateHz` at: the same, or the next it can carry. */
export function codecSampleRate(format: CompressedFormat, sampleRateHz: number): number {
  const pick = (rates: readonly number[]) =>
    rates.find((rate) => rate >= sampleRateHz) ?? (rates[rates.length - 1] as number);
  switch (format) {
    case "opus":
      return pick(OPUS_SAMPLE_RATES_HZ);
    case "aac":
      return pick(AAC_SAMPLE_RATES_HZ);
    case "flac":
      return Math.min(sampleRateHz, FLAC_MAX_SAMPLE_RATE_HZ);
  }
}

/**
 * Starts a compressed encoder. Bytes come out as the muxer completes them: Ogg pages (about one a
 * second), FLAC frames, ADTS frames.
 *
 * Throws `RangeError` for a channel count the codec does not take here (Opus and AAC: 1 or 2;
 * FLAC: 1 to 8), a non-positive bit rate, or a chunk that is not a whole number of frames.
 */
export async function createCompressedEncoder(
  options: CompressedEncoderOptions,
): Promise<CompressedStreamEncoder> {
  const { format, sampleRateHz, channels } = options;
  const maxChannels = format === "flac" ? 8 : 2;
  if (!Number.isInteger(channels) || channels < 1 || channels > maxChannels) {
    throw new RangeError(`${format} encodes 1 to ${maxChannels} channels here, not ${channels}`);
  }
  const bitrateKbps =
    format === "flac"
      ? undefined
      : (options.bitrateKbps ?? DEFAULT_COMPRESSED_KBPS_PER_CHANNEL[format] * channels);
  if (bitrateKbps !== undefined && !(Number.isInteger(bitrateKbps) && bitrateKbps > 0)) {
    throw new RangeError(`bitrateKbps must be a positive integer, got ${bitrateKbps}`);
  }
  registerCoders();
  const rate = codecSampleRate(format, sampleRateHz);
  let resampler: PcmResampler | undefined;
  if (rate !== sampleRateHz) {
    resampler = (await loadResamplerFactory()).create({
      fromHz: sampleRateHz,
      toHz: rate,
      channels,
      ...(options.resamplerQuality !== undefined ? { quality: options.resamplerQuality } : {}),
    });
  }
  const whole = options.whole ?? false;
  // STREAMINFO's total is counted at the codec's rate (FLAC converts only above 655350 Hz).
  const flacTotalFrames =
    format === "flac" && !whole && options.totalPcmFrames !== undefined
      ? Math.round((options.totalPcmFrames * rate) / sampleRateHz)
      : undefined;

  // What the muxer wrote: appended in stream mode, placed by position in whole-file mode.
  const writes: StreamTargetChunk[] = [];
  let streamed = 0;
  const target = new StreamTarget(
    new WritableStream<StreamTargetChunk>({
      write(chunk) {
        // The muxer may reuse its buffer after the write resolves.
        writes.push({ ...chunk, data: chunk.data.slice() });
      },
    }),
  );
  const output = new Output({
    format:
      format === "opus"
        ? new OggOutputFormat({ maximumPageDuration: OGG_PAGE_SECONDS })
        : format === "flac"
          ? new FlacOutputFormat({ appendOnly: !whole })
          : new AdtsOutputFormat(),
    target,
  });
  const source = new AudioSampleSource({
    codec: format,
    ...(bitrateKbps !== undefined ? { bitrate: bitrateKbps * 1000 } : {}),
  });
  output.addAudioTrack(source);
  await output.start();

  const frameBytes = channels * 2;
  let framesEncoded = 0;
  // FFmpeg's AAC encoder starts with one frame (1024 samples) of priming that ADTS cannot mark
  // for removal, so every player would play it as a delay: it is dropped. The next frame then
  // decodes without its overlap partner (a 1024-sample fade-in of what is, in speech, silence).
  let primingFrame = format === "aac" && !whole;
  let state: "open" | "ended" | "canceled" = "open";

  const take = (): Uint8Array => {
    if (whole || writes.length === 0) return EMPTY;
    const parts = writes.splice(0);
    for (const part of parts) {
      if (part.position !== streamed) {
        // A muxer that seeks back cannot stream; this is a bug here, not the caller's.
        throw new Error(`the ${format} muxer wrote at byte ${part.position} after ${streamed}`);
      }
      if (flacTotalFrames !== undefined) writeFlacTotalSamples(part, flacTotalFrames);
      streamed += part.data.byteLength;
    }
    let bytes: Uint8Array =
      parts.length === 1
        ? (parts[0] as StreamTargetChunk).data
        : Buffer.concat(parts.map((p) => p.data));
    if (primingFrame) {
      // The muxer writes whole ADTS frames; the first one is the encoder's priming.
      const length = adtsFrameLength(bytes);
      if (length !== undefined && length <= bytes.byteLength) {
        primingFrame = false;
        bytes = bytes.subarray(length);
      }
    }
    return bytes;
  };
  const add = async (pcm: Uint8Array): Promise<void> => {
    if (pcm.byteLength === 0) return;
    const frames = pcm.byteLength / frameBytes;
    const data = new Int16Array(frames * channels);
    new Uint8Array(data.buffer).set(pcm);
    const sample = new AudioSample({
      data,
      format: "s16",
      numberOfChannels: channels,
      sampleRate: rate,
      timestamp: framesEncoded / rate,
    });
    try {
      await source.add(sample);
    } finally {
      // The encoder has copied what it needs; closing frees the sample at once.
      sample.close();
    }
    framesEncoded += frames;
  };

  return {
    contentType: COMPRESSED_CONTENT_TYPES[format],
    sampleRateHz: rate,
    async encode(pcm) {
      if (state !== "open") throw new Error(`the ${format} encoder was already ${state}`);
      if (pcm.byteLength % frameBytes !== 0) {
        throw new RangeError(
          `PCM chunk of ${pcm.byteLength} bytes is not a whole number of ${frameBytes}-byte frames`,
        );
      }
      await add(resampler ? resampler.push(pcm) : pcm);
      return take();
    },
    async end() {
      if (state !== "open") return EMPTY;
      state = "ended";
      if (resampler) await add(resampler.end());
      source.close();
      await output.finalize();
      if (!whole) return take();
      let size = 0;
      for (const part of writes) size = Math.max(size, part.position + part.data.byteLength);
      const file = new Uint8Array(size);
      for (const part of writes) file.set(part.data, part.position);
      if (format === "aac") return file.subarray(adtsFrameLength(file) ?? 0);
      return file;
    },
    async cancel() {
      if (state === "canceled") return;
      const wasOpen = state === "open";
      state = "canceled";
      resampler?.dispose();
      if (wasOpen) await output.cancel();
    },
  };
}

/**
 * Byte offset of the low 32 bits of STREAMINFO's 36-bit total samples: after "fLaC", the block
 * header and 14 bytes of block sizes, frame sizes and format.
 */
const FLAC_TOTAL_SAMPLES_OFFSET = 22;

/**
 * Fills in STREAMINFO's total samples (RFC 9639 section 8.2) when `part` holds the whole field.
 * The muxer writes the field as 0 ("unknown") in stream mode and this patches the copy before it
 * leaves; a part that holds only some of its bytes is left as it is (still valid).
 */
function writeFlacTotalSamples(part: StreamTargetChunk, totalFrames: number): void {
  const start = FLAC_TOTAL_SAMPLES_OFFSET - 1 - part.position;
  if (start < 0 || start + 5 > part.data.byteLength || totalFrames >= 2 ** 32) return;
  const view = new DataView(part.data.buffer, part.data.byteOffset, part.data.byteLength);
  // The byte before holds bits-per-sample (high nibble) and the total's top 4 bits (0 here).
  view.setUint8(start, view.getUint8(start) & 0xf0);
  view.setUint32(start + 1, totalFrames);
}

/** Length of the ADTS frame at the start of `bytes` (header included), if its header is there. */
function adtsFrameLength(bytes: Uint8Array): number | undefined {
  if (bytes.byteLength < 7 || bytes[0] !== 0xff || ((bytes[1] ?? 0) & 0xf6) !== 0xf0) {
    return undefined;
  }
  return (((bytes[3] ?? 0) & 0x03) << 11) | ((bytes[4] ?? 0) << 3) | ((bytes[5] ?? 0) >> 5);
}
