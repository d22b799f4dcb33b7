/**
 * A streaming MP3 encoder over `@breezystack/lamejs` (a pure-JavaScript port of LAME, LGPL-3.0,
 * used unmodified as a separate package): 16-bit PCM in, MPEG Layer III frames out as soon as
 * they are complete.
 */
import { Mp3Encoder as LameEncoder } from "@breezystack/lamejs";
import {
  createMp3InfoFrame,
  parseMp3FrameHeader,
  predictLameCbrLayout,
  readMp3InfoTag,
} from "./mp3-info-frame.js";

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
  /**
   * The stream's length in PCM frames (samples per channel), when it is known before encoding
   * (a render, a whole clip). The stream then starts with a LAME "Info" frame carrying the frame
   * count, the encoder delay and the padding, so decoders that read it (ffmpeg, mpg123, most
   * players) play exactly these frames; others play it as one frame of silence. `flush()`
   * throws if a different number of frames was encoded. Without it (a live stream whose end is
   * unknown when its first bytes leave) there is no Info frame and decoders also play LAME's
   * delay (576 + the decoder's 529 samples) and the last frame's padding. No Info frame is
   * written either when LAME resamples (a bit rate too low for the input's sample rate).
   */
  totalPcmFrames?: number;
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
 * Creates a streaming MP3 encoder. LAME's bit reservoir is off (the lamejs default), so every
 * frame decodes on its own and a stream can be cut or joined at any frame boundary. With
 * `totalPcmFrames` the first bytes out are the Info frame (see {@link Mp3EncoderOptions}).
 *
 * Throws `RangeError` for a sample rate MP3 cannot carry, a channel count other than 1 or 2, a
 * non-positive bit rate, a `totalPcmFrames` that is not a non-negative integer, or a chunk that
 * is not a whole number of frames.
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
  const { totalPcmFrames } = options;
  if (
    totalPcmFrames !== undefined &&
    !(Number.isSafeInteger(totalPcmFrames) && totalPcmFrames >= 0)
  ) {
    throw new RangeError(`totalPcmFrames must be a non-negative integer, got ${totalPcmFrames}`);
  }
  const lame = new LameEncoder(channels, sampleRateHz, bitrateKbps);
  const frameBytes = channels * 2;
  let flushed = false;
  let encodedFrames = 0;
  let infoPending = totalPcmFrames !== undefined;
  // The Info frame copies the format of LAME's first frame, so it goes out with that frame.
  const withInfo = (frames: Uint8Array): Uint8Array => {
    if (!infoPending || frames.byteLength === 0 || totalPcmFrames === undefined) return frames;
    infoPending = false;
    const header = parseMp3FrameHeader(frames, 0);
    if (!header || header.sampleRateHz !== sampleRateHz) return frames;
    const info = createMp3InfoFrame({
      header,
      layout: predictLameCbrLayout(header, totalPcmFrames),
    });
    const joined = new Uint8Array(info.byteLength + frames.byteLength);
    joined.set(info);
    joined.set(frames, info.byteLength);
    return joined;
  };

  return {
    encode(pcm) {
      if (flushed) throw new Error("the MP3 encoder was already flushed");
      if (pcm.byteLength % frameBytes !== 0) {
        throw new RangeError(
          `PCM chunk of ${pcm.byteLength} bytes is not a whole number of ${frameBytes}-byte frames`,
        );
      }
      if (pcm.byteLength === 0) return EMPTY;
      encodedFrames += pcm.byteLength / frameBytes;
      const samples = toInt16(pcm);
      if (channels === 1) return withInfo(asBytes(lame.encodeBuffer(samples)));
      const frames = samples.length / 2;
      const left = new Int16Array(frames);
      const right = new Int16Array(frames);
      for (let i = 0; i < frames; i++) {
        left[i] = samples[2 * i] ?? 0;
        right[i] = samples[2 * i + 1] ?? 0;
      }
      return withInfo(asBytes(lame.encodeBuffer(left, right)));
    },
    flush() {
      if (flushed) return EMPTY;
      flushed = true;
      if (totalPcmFrames !== undefined && encodedFrames !== totalPcmFrames) {
        throw new RangeError(
          `the MP3 stream was announced as ${totalPcmFrames} PCM frames but ${encodedFrames} were encoded`,
        );
      }
      return withInfo(asBytes(lame.flush()));
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
  /** Number of audio frames (an Info frame at the start is not counted). */
  frames: number;
  /** Sample rate of the first audio frame, in Hz. */
  sampleRateHz: number;
  /** Channels of the first audio frame. */
  channels: number;
  /** Bit rate of the first audio frame, in kbit/s. */
  bitrateKbps: number;
  /** Playing time of all audio frames, in ms (fractional). */
  durationMs: number;
  /**
   * From a LAME Info frame at the start, when there is one: the encoder delay and the padding,
   * and the playing time without them, which is what a decoder that reads the tag plays.
   */
  gapless?: {
    encoderDelaySamples: number;
    paddingSamples: number;
    /** Samples per channel between delay and padding. */
    pcmFrames: number;
    /** Their playing time, in ms (fractional). */
    durationMs: number;
  };
}

/**
 * Walks the Layer III frames of an MP3 stream from its first byte (no ID3 tag), checking each
 * frame's sync word and header and that frames follow each other exactly. A Xing/LAME Info
 * frame at the start is read, not counted as audio.
 *
 * Throws `RangeError` naming the offset of the first byte that is not a valid frame header, or a
 * last frame cut short.
 */
export function readMp3Frames(bytes: Uint8Array): Mp3StreamInfo {
  let offset = 0;
  let frames = 0;
  let durationMs = 0;
  let first: Omit<Mp3StreamInfo, "frames" | "durationMs"> | undefined;
  const tag = readMp3InfoTag(bytes);
  while (offset < bytes.length) {
    const header = parseMp3FrameHeader(bytes, offset);
    if (!header) throw new RangeError(`no MPEG Layer III frame header at byte ${offset}`);
    if (offset + header.frameBytes > bytes.length) {
      throw new RangeError(`the frame at byte ${offset} is cut short`);
    }
    if (!(offset === 0 && tag)) {
      first ??= {
        sampleRateHz: header.sampleRateHz,
        channels: header.channels,
        bitrateKbps: header.bitrateKbps,
      };
      frames++;
      durationMs += (header.samplesPerFrame / header.sampleRateHz) * 1000;
    }
    offset += header.frameBytes;
  }
  if (!first) throw new RangeError("no MPEG Layer III frame: the stream is empty");
  const info: Mp3StreamInfo = { ...first, frames, durationMs };
  if (tag?.gapless) {
    const { encoderDelaySamples, paddingSamples } = tag.gapless;
    const pcmFrames = Math.max(
      0,
      Math.round((durationMs * first.sampleRateHz) / 1000) - encoderDelaySamples - paddingSamples,
    );
    info.gapless = {
      encoderDelaySamples,
      paddingSamples,
      pcmFrames,
      durationMs: (pcmFrames / first.sampleRateHz) * 1000,
    };
  }
  return info;
}
