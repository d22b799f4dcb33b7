/**
 * Decodes WAV files as callers send them (integer PCM of 8 to 32 bits and IEEE float, plain or
 * WAVE_FORMAT_EXTENSIBLE) to 16-bit PCM for analysis. The header is read by `readWavLayout` in
 * `../audio/wav.ts`, re-exported here for the analysis API.
 */
import { readWavLayout, type WavSampleEncoding } from "../audio/wav.js";

export type { WavLayout, WavSampleEncoding } from "../audio/wav.js";
export { readWavLayout } from "../audio/wav.js";

/** 16-bit PCM decoded by {@link decodeWavToInt16}. */
export interface Int16Pcm {
  /** Interleaved signed 16-bit samples. */
  samples: Int16Array;
  /** Samples per second per channel. */
  sampleRateHz: number;
  /** Interleaved channels. */
  channels: number;
}

/**
 * Decodes the samples of a WAV file (any layout {@link readWavLayout} accepts) to interleaved
 * signed 16-bit PCM, keeping rate and channels.
 *
 * Wider integers keep their top 16 bits; floats are scaled by 32768 and clipped to the 16-bit
 * range (NaN becomes 0). Only the bytes present are decoded, so a truncated file gives its
 * first part. Throws `WavFormatError` like {@link readWavLayout}.
 */
export function decodeWavToInt16(bytes: Uint8Array): Int16Pcm {
  const layout = readWavLayout(bytes);
  const bytesPerSample = layout.bitsPerSample / 8;
  const count = layout.dataBytes / bytesPerSample;
  const samples = new Int16Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset + layout.dataOffset, layout.dataBytes);
  const read = sampleReader(layout.encoding, layout.bitsPerSample, view);
  for (let i = 0; i < count; i++) {
    samples[i] = read(i * bytesPerSample);
  }
  return { samples, sampleRateHz: layout.sampleRateHz, channels: layout.channels };
}

function sampleReader(
  encoding: WavSampleEncoding,
  bits: number,
  view: DataView,
): (offset: number) => number {
  if (encoding === "float") {
    const get =
      bits === 32
        ? (o: number) => view.getFloat32(o, true)
        : (o: number) => view.getFloat64(o, true);
    return (o) => {
      const value = Math.round(get(o) * 32768);
      // NaN fails both comparisons and must not reach the Int16Array as a garbage value.
      return value >= 32767 ? 32767 : value <= -32768 ? -32768 : Number.isNaN(value) ? 0 : value;
    };
  }
  switch (bits) {
    case 8:
      // 8-bit WAV is unsigned with 128 as silence.
      return (o) => (view.getUint8(o) - 128) << 8;
    case 16:
      return (o) => view.getInt16(o, true);
    case 24:
      // Top 16 bits of the 24: the two high bytes, the high one signed.
      return (o) => view.getInt16(o + 1, true);
    default:
      return (o) => view.getInt16(o + 2, true);
  }
}
