/**
 * Reads WAV files as callers send them (integer PCM of 8 to 32 bits and IEEE float, plain or
 * WAVE_FORMAT_EXTENSIBLE) down to the layout of their sample data, and decodes that data to 16-bit
 * PCM for analysis. The canonical 16-bit header the gateway writes lives in `../audio/wav.ts`.
 */
import { WAV_UNKNOWN_SIZE, WavFormatError } from "../audio/wav.js";

const FORMAT_PCM = 0x0001;
const FORMAT_IEEE_FLOAT = 0x0003;
const FORMAT_EXTENSIBLE = 0xfffe;
// KSDATAFORMAT_SUBTYPE_PCM and _IEEE_FLOAT share these fourteen bytes after the two-byte tag.
const SUBFORMAT_GUID_TAIL = [
  0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

/** How the samples of a WAV file are stored. */
export type WavSampleEncoding = "int" | "float";

/** Where and how a WAV file's sample data is stored, as read by {@link readWavLayout}. */
export interface WavLayout {
  /** `int`: signed integer PCM (unsigned for 8 bits); `float`: IEEE float. */
  encoding: WavSampleEncoding;
  /** Samples per second per channel. */
  sampleRateHz: number;
  /** Interleaved channels. */
  channels: number;
  /** Bits per sample: 8, 16, 24 or 32 for `int`; 32 or 64 for `float`. */
  bitsPerSample: number;
  /** Byte offset of the first sample byte. */
  dataOffset: number;
  /**
   * Size the `data` chunk header declares, in bytes; `undefined` for the streaming marker
   * 0xFFFFFFFF. It may exceed what is present (a truncated or forged file).
   */
  declaredDataBytes: number | undefined;
  /** Sample bytes present from `dataOffset`, capped by the declared size, in whole frames. */
  dataBytes: number;
}

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
 * Reads the format and the location of the sample data of a WAV file without touching the
 * samples.
 *
 * Walks the chunk list, skipping chunks it does not need, and accepts integer PCM (8, 16, 24, 32
 * bits) and IEEE float (32, 64 bits), as plain format tags or as WAVE_FORMAT_EXTENSIBLE. The RIFF
 * size is not trusted (many writers get it wrong). Throws `WavFormatError` for anything else: not
 * RIFF/WAVE, a compressed format, a malformed `fmt ` chunk, a chunk before `data` that runs past
 * the end, or no `data` chunk.
 */
export function readWavLayout(bytes: Uint8Array): WavLayout {
  if (bytes.length < 12 || tagAt(bytes, 0) !== "RIFF" || tagAt(bytes, 8) !== "WAVE") {
    throw new WavFormatError("not a RIFF/WAVE file");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format: Omit<WavLayout, "dataOffset" | "declaredDataBytes" | "dataBytes"> | undefined;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = tagAt(bytes, offset);
    const size = view.getUint32(offset + 4, true);
    const bodyOffset = offset + 8;
    if (id === "data") {
      if (format === undefined) {
        throw new WavFormatError("data chunk comes before the fmt chunk");
      }
      const frameBytes = (format.channels * format.bitsPerSample) / 8;
      const declaredDataBytes = size === WAV_UNKNOWN_SIZE ? undefined : size;
      const present = Math.min(bytes.length - bodyOffset, declaredDataBytes ?? Infinity);
      return {
        ...format,
        dataOffset: bodyOffset,
        declaredDataBytes,
        dataBytes: present - (present % frameBytes),
      };
    }
    if (bodyOffset + size > bytes.length) {
      throw new WavFormatError(`chunk "${printable(id)}" runs past the end of the file`);
    }
    if (id === "fmt ") {
      format = readFormatChunk(view, bodyOffset, size);
    }
    // Chunk bodies are padded to an even length.
    offset = bodyOffset + size + (size % 2);
  }
  throw new WavFormatError(format === undefined ? "no fmt chunk" : "no data chunk");
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

function readFormatChunk(
  view: DataView,
  offset: number,
  size: number,
): Omit<WavLayout, "dataOffset" | "declaredDataBytes" | "dataBytes"> {
  if (size < 16) {
    throw new WavFormatError(`fmt chunk is ${size} bytes, expected at least 16`);
  }
  let tag = view.getUint16(offset, true);
  const channels = view.getUint16(offset + 2, true);
  const sampleRateHz = view.getUint32(offset + 4, true);
  const blockAlign = view.getUint16(offset + 12, true);
  const bitsPerSample = view.getUint16(offset + 14, true);
  if (tag === FORMAT_EXTENSIBLE) {
    if (size < 40 || !hasStandardGuidTail(view, offset + 26)) {
      throw new WavFormatError("WAVE_FORMAT_EXTENSIBLE file has an unknown sub-format");
    }
    tag = view.getUint16(offset + 24, true);
  }
  let encoding: WavSampleEncoding;
  if (tag === FORMAT_PCM && [8, 16, 24, 32].includes(bitsPerSample)) {
    encoding = "int";
  } else if (tag === FORMAT_IEEE_FLOAT && (bitsPerSample === 32 || bitsPerSample === 64)) {
    encoding = "float";
  } else {
    throw new WavFormatError(
      `format tag 0x${tag.toString(16)} with ${bitsPerSample}-bit samples is not integer PCM (8/16/24/32-bit) or float (32/64-bit)`,
    );
  }
  if (channels === 0 || sampleRateHz === 0) {
    throw new WavFormatError(`invalid format: ${channels} channels at ${sampleRateHz} Hz`);
  }
  if (blockAlign !== (channels * bitsPerSample) / 8) {
    throw new WavFormatError(
      `block align ${blockAlign} does not match ${channels} channels of ${bitsPerSample} bits`,
    );
  }
  return { encoding, sampleRateHz, channels, bitsPerSample };
}

function hasStandardGuidTail(view: DataView, offset: number): boolean {
  return SUBFORMAT_GUID_TAIL.every((byte, i) => view.getUint8(offset + i) === byte);
}

function tagAt(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + 4));
}

// Chunk ids come from untrusted files; keep error messages to printable ASCII.
function printable(tag: string): string {
  return tag.replace(/[^\x20-\x7e]/g, "?");
}
