/**
 * RIFF/WAVE helpers: write the canonical 44-byte 16-bit PCM header the gateway puts in front of
 * engine PCM, and read the header of WAV files engines and clients hand us (one chunk walker,
 * {@link readWavLayout}, for integer PCM and IEEE float; {@link parseWav} narrows it to PCM).
 */

/** Size of the canonical PCM header written by {@link encodeWavHeader}. */
export const WAV_HEADER_BYTES = 44;

/** RIFF and data sizes written when the length is unknown (a live stream). */
export const WAV_UNKNOWN_SIZE = 0xffff_ffff;

const WAVE_FORMAT_PCM = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT = 0x0003;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
// KSDATAFORMAT_SUBTYPE_PCM is 00000001-0000-0010-8000-00aa00389b71 (_IEEE_FLOAT likewise with 3);
// the first two bytes carry the format tag, the remaining fourteen are fixed.
const SUBFORMAT_GUID_TAIL = [
  0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

/** Parameters of {@link encodeWavHeader}. */
export interface WavHeaderOptions {
  /** Samples per second per channel, e.g. 22050. */
  sampleRateHz: number;
  /** Interleaved channels; 1 for mono. */
  channels: number;
  /**
   * Bytes of PCM that follow the header. Leave it out when streaming audio of unknown length: the
   * RIFF and data sizes are then written as 0xFFFFFFFF, which ffmpeg, sox, browsers and
   * {@link parseWav} read as "until the end of the stream".
   */
  dataBytes?: number | undefined;
}

/** What {@link parseWav} learns from a WAV header. */
export interface WavInfo {
  /** Samples per second per channel. */
  sampleRateHz: number;
  /** Interleaved channels. */
  channels: number;
  /** Bits per sample, e.g. 16. */
  bitsPerSample: number;
  /** Byte offset of the first PCM byte in the parsed buffer. */
  dataOffset: number;
  /** PCM bytes available from `dataOffset`; a whole number of frames. */
  dataBytes: number;
}

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

/** Thrown by {@link parseWav} and {@link readWavLayout} when the bytes are not a WAV file they read. */
export class WavFormatError extends Error {
  override name = "WavFormatError";
}

/** Reports whether `error` is a {@link WavFormatError}. */
export function isWavFormatError(error: unknown): error is WavFormatError {
  return error instanceof WavFormatError;
}

/**
 * Encodes the 44-byte canonical RIFF/WAVE header for signed 16-bit little-endian PCM.
 *
 * Without `dataBytes` the header takes the streaming form (RIFF and data sizes 0xFFFFFFFF) so it
 * can be sent before the length is known. Throws `RangeError` for a non-positive or non-integer
 * rate or channel count, or a `dataBytes` that is not a whole number of frames or does not fit the
 * 32-bit RIFF size.
 */
export function encodeWavHeader(options: WavHeaderOptions): Uint8Array {
  const { sampleRateHz, channels, dataBytes } = options;
  if (!Number.isInteger(sampleRateHz) || sampleRateHz <= 0 || sampleRateHz > 0xffff_ffff) {
    throw new RangeError(`sampleRateHz must be a positive integer, got ${sampleRateHz}`);
  }
  if (!Number.isInteger(channels) || channels <= 0 || channels > 0xffff) {
    throw new RangeError(`channels must be an integer in 1..65535, got ${channels}`);
  }
  const blockAlign = channels * 2;
  if (blockAlign > 0xffff) {
    throw new RangeError(`channels ${channels} is too many for a 16-bit block align`);
  }
  if (dataBytes !== undefined) {
    if (!Number.isInteger(dataBytes) || dataBytes < 0) {
      throw new RangeError(`dataBytes must be a non-negative integer, got ${dataBytes}`);
    }
    if (dataBytes % blockAlign !== 0) {
      throw new RangeError(
        `dataBytes ${dataBytes} is not a whole number of ${blockAlign}-byte frames`,
      );
    }
    // The RIFF size counts the 36 header bytes after it, and must stay below the streaming marker.
    if (dataBytes + 36 >= WAV_UNKNOWN_SIZE) {
      throw new RangeError(`dataBytes ${dataBytes} does not fit a 32-bit RIFF size`);
    }
  }
  const header = new Uint8Array(WAV_HEADER_BYTES);
  const view = new DataView(header.buffer);
  writeTag(header, 0, "RIFF");
  view.setUint32(4, dataBytes === undefined ? WAV_UNKNOWN_SIZE : 36 + dataBytes, true);
  writeTag(header, 8, "WAVE");
  writeTag(header, 12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, WAVE_FORMAT_PCM, true);
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRateHz, true);
  view.setUint32(28, sampleRateHz * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, 16, true);
  writeTag(header, 36, "data");
  view.setUint32(40, dataBytes ?? WAV_UNKNOWN_SIZE, true);
  return header;
}

/**
 * Reads the format and the location of the PCM data of a WAV file.
 *
 * Accepts what {@link readWavLayout} accepts except IEEE float: integer PCM of 8, 16, 24 or 32
 * bits, as format tag 1 or as WAVE_FORMAT_EXTENSIBLE with the PCM sub-format. A data size of
 * 0xFFFFFFFF (streaming writers) or one that runs past the end of `bytes` (a partly received file)
 * is clamped to the bytes present, rounded down to whole frames. Throws {@link WavFormatError} for
 * anything else.
 */
export function parseWav(bytes: Uint8Array): WavInfo {
  const { encoding, sampleRateHz, channels, bitsPerSample, dataOffset, dataBytes } =
    readWavLayout(bytes);
  if (encoding !== "int") {
    throw new WavFormatError(
      `format tag 0x${WAVE_FORMAT_IEEE_FLOAT.toString(16)} (IEEE float) is not integer PCM`,
    );
  }
  return { sampleRateHz, channels, bitsPerSample, dataOffset, dataBytes };
}

/**
 * Reads the format and the location of the sample data of a WAV file without touching the
 * samples.
 *
 * Walks the chunk list, skipping chunks it does not need (`LIST`, `fact`, `bext`, …), and accepts
 * integer PCM (8, 16, 24, 32 bits) and IEEE float (32, 64 bits), as plain format tags or as
 * WAVE_FORMAT_EXTENSIBLE. The RIFF size is not trusted (many writers get it wrong). Throws
 * {@link WavFormatError} for anything else: not RIFF/WAVE, a compressed format, a missing or
 * malformed `fmt ` chunk, a chunk before `data` that runs past the end, or no `data` chunk.
 */
export function readWavLayout(bytes: Uint8Array): WavLayout {
  if (bytes.length < 12 || readTag(bytes, 0) !== "RIFF" || readTag(bytes, 8) !== "WAVE") {
    throw new WavFormatError("not a RIFF/WAVE file");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format: Omit<WavLayout, "dataOffset" | "declaredDataBytes" | "dataBytes"> | undefined;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = readTag(bytes, offset);
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
      format = parseFormatChunk(view, bodyOffset, size);
    }
    // Chunk bodies are padded to an even length.
    offset = bodyOffset + size + (size % 2);
  }
  throw new WavFormatError(format === undefined ? "no fmt chunk" : "no data chunk");
}

/**
 * Returns the playing time of the PCM described by `info`, in milliseconds (fractional).
 */
export function wavDurationMs(
  info: Pick<WavInfo, "sampleRateHz" | "channels" | "bitsPerSample" | "dataBytes">,
): number {
  const bytesPerSecond = (info.sampleRateHz * info.channels * info.bitsPerSample) / 8;
  return (info.dataBytes / bytesPerSecond) * 1000;
}

function parseFormatChunk(
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
  const extensible = tag === WAVE_FORMAT_EXTENSIBLE;
  if (extensible) {
    if (size < 40 || !hasStandardGuidTail(view, offset + 26)) {
      throw new WavFormatError("WAVE_FORMAT_EXTENSIBLE file has an unknown sub-format");
    }
    tag = view.getUint16(offset + 24, true);
  }
  let encoding: WavSampleEncoding;
  if (tag === WAVE_FORMAT_PCM && [8, 16, 24, 32].includes(bitsPerSample)) {
    encoding = "int";
  } else if (tag === WAVE_FORMAT_IEEE_FLOAT && (bitsPerSample === 32 || bitsPerSample === 64)) {
    encoding = "float";
  } else {
    throw new WavFormatError(
      `${extensible ? "WAVE_FORMAT_EXTENSIBLE sub-format" : "format tag"} 0x${tag.toString(16)} with samples of ${bitsPerSample} bits is not integer PCM (8/16/24/32 bits) or IEEE float (32/64 bits)`,
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

function writeTag(bytes: Uint8Array, offset: number, tag: string): void {
  for (let i = 0; i < 4; i++) {
    bytes[offset + i] = tag.charCodeAt(i);
  }
}

function readTag(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + 4));
}

// Chunk ids come from untrusted files; keep error messages to printable ASCII.
function printable(tag: string): string {
  return tag.replace(/[^\x20-\x7e]/g, "?");
}
