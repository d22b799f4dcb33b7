/**
 * A streaming MP3 encoder over `@breezystack/lamejs` (a pure-JavaScript port of LAME, LGPL-3.0,
 * used unmodified as a separate package): 16-bit PCM in, MPEG Layer III frames out as soon as
 * they are complete.
 */
import { Mp3Encoder as LameEncoder } from "@breezystack/lamejs";

/** Sample rates an MP3 stream can carry (MPEG-1, MPEG-2 and MPEG-2.5 Layer III). */
export const MP3_SAMPLE_RATES_HZ: readonly number[] = [
  8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000,
];

/** Options of {@link createMp3Encoder}. */
export interface Mp3EncoderOptions {
  /** Samples per second per channel of the input PCM; one of {@link MP3_SAMPLE_RATES_HZ}. */
  sampleRateHz: number;
  /** Interleaved channels of the input PCM: 1 or 2. */
  channels: number;
  /**
   * Constant bit rate of the whole stream, in kbit/s. 64 per channel keeps speech clear at under
   * a fifth of 22050 Hz PCM's size. LAME takes the nearest rate the MPEG version allows, and
   * lowers the output sample rate when the bit rate is too low for the input (48 kHz stereo at
   * 64 kbit/s comes out at 24 kHz); the duration is kept either way.
   * @default 64 × channels
   */
  bitrateKbps?: number;
}

/** Encodes one MP3 stream; not reusable after {@link Mp3StreamEncoder.flush}. */
export interface Mp3StreamEncoder {
  /**
   * Encodes the next PCM chunk (signed 16-bit little-endian, interleaved, a whole number of
   * frames) and returns the MP3 frames it completed, often none for a short chunk.
   */
  encode(pcm: Uint8Array): Uint8Array;
  /** Encodes what is buffered and returns the last frames; later calls return nothing. */
  flush(): Uint8Array;
}

/** Default constant bit rate of {@link createMp3Encoder} per channel, in kbit/s. */
export const DEFAULT_MP3_KBPS_PER_CHANNEL = 64;

const EMPTY = new Uint8Array(0);

/**
 * Creates a streaming MP3 encoder. LAME's bit reservoir and the Xing/LAME info tag are off (the
 * lamejs defaults), so every frame decodes on its own and a stream can be cut or joined at any
 * frame boundary; a player reads the duration from the frame count.
 *
 * Throws `RangeError` for a sample rate MP3 cannot carry, a channel count other than 1 or 2, a
 * non-positive bit rate, or a chunk that is not a whole number of frames.
 */
export function createMp3Encoder(options: Mp3EncoderOptions): Mp3StreamEncoder {
  const { sampleRateHz, channels } = options;
  const bitrateKbps = options.bitrateKbps ?? DEFAULT_MP3_KBPS_PER_CHANNEL * channels;
  if (!MP3_SAMPLE_RATES_HZ.includes(sampleRateHz)) {
    throw new RangeError(
      `MP3 cannot carry ${sampleRateHz} Hz audio; it needs one of ${MP3_SAMPLE_RATES_HZ.join(", ")} Hz`,
    );
  }
  if (channels !== 1 && channels !== 2) {
    throw new RangeError(`MP3 encodes 1 or 2 channels, not ${channels}`);
  }
  if (!Number.isInteger(bitrateKbps) || bitrateKbps <= 0) {
    throw new RangeError(`bitrateKbps must be a positive integer, got ${bitrateKbps}`);
  }
  const lame = new LameEncoder(channels, sampleRateHz, bitrateKbps);
  const frameBytes = channels * 2;
  let flushed = false;

  return {
    encode(pcm) {
      if (flushed) throw new Error("the MP3 encoder was already flushed");
      if (pcm.byteLength % frameBytes !== 0) {
        throw new RangeError(
          `PCM chunk of ${pcm.byteLength} bytes is not a whole number of ${frameBytes}-byte frames`,
        );
      }
      if (pcm.byteLength === 0) return EMPTY;
      const samples = toInt16(pcm);
      if (channels === 1) return asBytes(lame.encodeBuffer(samples));
      const frames = samples.length / 2;
      const left = new Int16Array(frames);
      const right = new Int16Array(frames);
      for (let i = 0; i < frames; i++) {
        left[i] = samples[2 * i] ?? 0;
        right[i] = samples[2 * i + 1] ?? 0;
      }
      return asBytes(lame.encodeBuffer(left, right));
    },
    flush() {
      if (flushed) return EMPTY;
      flushed = true;
      return asBytes(lame.flush());
    },
  };
}

// lamejs returns a fresh Int8Array per call; view its bytes unsigned without copying.
function asBytes(frames: ArrayBufferView): Uint8Array {
  return new Uint8Array(frames.buffer, frames.byteOffset, frames.byteLength);
}

// PCM arrives little-endian, possibly at an odd offset into a shared buffer.
function toInt16(pcm: Uint8Array): Int16Array {
  const samples = new Int16Array(pcm.byteLength / 2);
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(i * 2, true);
  return samples;
}

/** What {@link readMp3Frames} learns from an MP3 stream. */
export interface Mp3StreamInfo {
  /** Number of frames. */
  frames: number;
  /** Sample rate of the first frame, in Hz. */
  sampleRateHz: number;
  /** Channels of the first frame. */
  channels: number;
  /** Bit rate of the first frame, in kbit/s. */
  bitrateKbps: number;
  /** Playing time of all frames, in ms (fractional). */
  durationMs: number;
}

const MPEG1_KBPS = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const MPEG2_KBPS = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
// Indexed by the version bits: 0 = MPEG-2.5, 2 = MPEG-2, 3 = MPEG-1 (1 is reserved).
const RATES_BY_VERSION: readonly (readonly number[] | undefined)[] = [
  [11025, 12000, 8000],
  undefined,
  [22050, 24000, 16000],
  [44100, 48000, 32000],
];

/**
 * Walks the Layer III frames of an MP3 stream from its first byte (no ID3 tag), checking each
 * frame's sync word and header and that frames follow each other exactly.
 *
 * Throws `RangeError` naming the offset of the first byte that is not a valid frame header, or a
 * last frame cut short.
 */
export function readMp3Frames(bytes: Uint8Array): Mp3StreamInfo {
  let offset = 0;
  let frames = 0;
  let durationMs = 0;
  let first: Omit<Mp3StreamInfo, "frames" | "durationMs"> | undefined;
  while (offset < bytes.length) {
    const b1 = bytes[offset + 1] ?? 0;
    const b2 = bytes[offset + 2] ?? 0;
    const b3 = bytes[offset + 3] ?? 0;
    const version = (b1 >> 3) & 3;
    const rates = RATES_BY_VERSION[version];
    const bitrateKbps = (version === 3 ? MPEG1_KBPS : MPEG2_KBPS)[b2 >> 4] ?? 0;
    const sampleRateHz = rates?.[(b2 >> 2) & 3] ?? 0;
    if (
      offset + 4 > bytes.length ||
      bytes[offset] !== 0xff ||
      (b1 & 0xe0) !== 0xe0 ||
      ((b1 >> 1) & 3) !== 1 ||
      bitrateKbps === 0 ||
      sampleRateHz === 0
    ) {
      throw new RangeError(`no MPEG Layer III frame header at byte ${offset}`);
    }
    const samplesPerFrame = version === 3 ? 1152 : 576;
    const length =
      Math.floor(((samplesPerFrame / 8) * bitrateKbps * 1000) / sampleRateHz) + ((b2 >> 1) & 1);
    if (offset + length > bytes.length) {
      throw new RangeError(`the frame at byte ${offset} is cut short`);
    }
    first ??= { sampleRateHz, channels: b3 >> 6 === 3 ? 1 : 2, bitrateKbps };
    frames++;
    durationMs += (samplesPerFrame / sampleRateHz) * 1000;
    offset += length;
  }
  if (!first) throw new RangeError("no MPEG Layer III frame: the stream is empty");
  return { ...first, frames, durationMs };
}
