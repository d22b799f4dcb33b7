/**
 * MPEG Layer III frame headers and the Xing/LAME "Info" frame: the silent first frame LAME writes
 * so that decoders know the stream's frame count, the encoder delay and the padding of the last
 * frame, and can play exactly the samples that were encoded (gapless playback).
 *
 * Layout from the LAME tag specification (Hydrogenaudio "LAME tag rev 1") and LAME's
 * `VbrTag.c`; ffmpeg (`libavformat/mp3dec.c`) and mpg123 read it.
 */

/** One Layer III frame header. */
export interface Mp3FrameHeader {
  /** Header bits 19-20: 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5. */
  versionBits: number;
  /** Sample rate, in Hz. */
  sampleRateHz: number;
  /** Bit rate, in kbit/s. */
  bitrateKbps: number;
  /** 1 (mono) or 2. */
  channels: number;
  /** 1152 for MPEG-1, 576 for MPEG-2 and 2.5. */
  samplesPerFrame: number;
  /** Whole frame length including the 4 header bytes, in bytes. */
  frameBytes: number;
  /** Length of the side information after the header (and its CRC), in bytes. */
  sideInfoBytes: number;
  /** Whether a 16-bit CRC follows the header. */
  crcProtected: boolean;
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
 * Reads the Layer III frame header at `offset`; undefined when the 4 bytes there are not one
 * (no sync word, not Layer III, free-format or reserved bit rate or sample rate, or past the end).
 */
export function parseMp3FrameHeader(bytes: Uint8Array, offset = 0): Mp3FrameHeader | undefined {
  if (offset + 4 > bytes.length) return undefined;
  const b1 = bytes[offset + 1] ?? 0;
  const b2 = bytes[offset + 2] ?? 0;
  const b3 = bytes[offset + 3] ?? 0;
  if (bytes[offset] !== 0xff || (b1 & 0xe0) !== 0xe0 || ((b1 >> 1) & 3) !== 1) return undefined;
  const versionBits = (b1 >> 3) & 3;
  const sampleRateHz = RATES_BY_VERSION[versionBits]?.[(b2 >> 2) & 3] ?? 0;
  const bitrateKbps = (versionBits === 3 ? MPEG1_KBPS : MPEG2_KBPS)[b2 >> 4] ?? 0;
  if (sampleRateHz === 0 || bitrateKbps === 0) return undefined;
  const mpeg1 = versionBits === 3;
  const samplesPerFrame = mpeg1 ? 1152 : 576;
  const channels = b3 >> 6 === 3 ? 1 : 2;
  const crcProtected = (b1 & 1) === 0;
  return {
    versionBits,
    sampleRateHz,
    bitrateKbps,
    channels,
    samplesPerFrame,
    frameBytes: frameLength(samplesPerFrame, bitrateKbps, sampleRateHz) + ((b2 >> 1) & 1),
    sideInfoBytes:
      (mpeg1 ? (channels === 1 ? 17 : 32) : channels === 1 ? 9 : 17) + (crcProtected ? 2 : 0),
    crcProtected,
  };
}

/** Bytes of an unpadded frame. */
function frameLength(samplesPerFrame: number, bitrateKbps: number, sampleRateHz: number): number {
  return Math.floor(((samplesPerFrame / 8) * bitrateKbps * 1000) / sampleRateHz);
}

/**
 * LAME's encoder delay: the encoded stream starts with this many samples before the input's
 * first one (LAME's ENCDELAY; decoders add their own 529, which the tag does not count).
 */
export const LAME_ENCODER_DELAY_SAMPLES = 576;

/** Frames and bytes LAME (constant bit rate, no resampling) makes of a known number of samples. */
export interface LameCbrLayout {
  /** Audio frames (the Info frame not counted). */
  audioFrames: number;
  /** Bytes of those frames. */
  audioBytes: number;
  /** Samples of padding after the input's last sample, in the last frames. */
  paddingSamples: number;
}

/**
 * Predicts what LAME's CBR encoder writes for `inputSamples` samples per channel, from its own
 * rules: the delay plus the input is padded to whole frames, with at least 576 samples of
 * padding (`lame_encode_flush`); frames alternate padded and unpadded lengths by the
 * Sieler/Sperschneider slot rule where the frame length is not a whole number of bytes.
 */
export function predictLameCbrLayout(header: Mp3FrameHeader, inputSamples: number): LameCbrLayout {
  const spf = header.samplesPerFrame;
  const encoded = LAME_ENCODER_DELAY_SAMPLES + inputSamples;
  let paddingSamples = spf - (encoded % spf);
  if (paddingSamples < 576) paddingSamples += spf;
  const audioFrames = (encoded + paddingSamples) / spf;
  const base = frameLength(spf, header.bitrateKbps, header.sampleRateHz);
  const frac = ((spf / 8) * header.bitrateKbps * 1000) % header.sampleRateHz;
  let padded = 0;
  if (frac !== 0) {
    let slotLag = frac;
    for (let i = 0; i < audioFrames; i++) {
      slotLag -= frac;
      if (slotLag < 0) {
        slotLag += header.sampleRateHz;
        padded++;
      }
    }
  }
  return { audioFrames, audioBytes: audioFrames * base + padded, paddingSamples };
}

/** What an Info (or Xing) frame says about its stream. */
export interface Mp3InfoTag {
  /** "Info" (constant bit rate) or "Xing" (variable). */
  kind: "Info" | "Xing";
  /** Audio frames after the tag frame, when given. */
  frames?: number;
  /** Bytes of the stream including the tag frame, when given. */
  bytes?: number;
  /** Encoder delay and end padding, in samples, when a LAME extension carries them. */
  gapless?: { encoderDelaySamples: number; paddingSamples: number };
  /** Whether the LAME extension's CRC-16 matches (undefined without an extension). */
  crcValid?: boolean;
}

const FLAG_FRAMES = 1;
const FLAG_BYTES = 2;
const FLAG_TOC = 4;
const FLAG_QUALITY = 8;
/** The Xing part (tag, flags, frames, bytes, 100-byte TOC, quality), in bytes. */
const XING_BYTES = 120;
/** The LAME extension after it, up to and including its CRC, in bytes. */
const LAME_EXTENSION_BYTES = 36;
/** LAME's short version string; `@breezystack/lamejs` is a port of LAME 3.98. */
const LAME_VERSION = "LAME3.98r";

/** Everything {@link createMp3InfoFrame} writes into the tag. */
export interface Mp3InfoFrameOptions {
  /** Header of the stream's first audio frame: the tag frame copies its format. */
  header: Mp3FrameHeader;
  /** The stream LAME will write after the tag frame. */
  layout: LameCbrLayout;
}

/**
 * Builds the Info frame that goes before the first audio frame: a frame of the stream's format
 * (at the smallest bit rate whose frame holds the tag when the stream's is too small) whose side
 * information is zero, so decoders that do not know the tag play it as one frame of silence.
 * Music CRC is left 0: the audio is not known when the tag is written, and no decoder checks it.
 *
 * Throws `RangeError` when the stream is too long for the tag's 32-bit byte count.
 */
export function createMp3InfoFrame(options: Mp3InfoFrameOptions): Uint8Array {
  const { header, layout } = options;
  const tagOffset = 4 + header.sideInfoBytes;
  const needed = tagOffset + XING_BYTES + LAME_EXTENSION_BYTES;
  const kbpsTable = header.versionBits === 3 ? MPEG1_KBPS : MPEG2_KBPS;
  const index = kbpsTable.findIndex(
    (kbps, i) =>
      i > 0 &&
      kbps >= header.bitrateKbps &&
      frameLength(header.samplesPerFrame, kbps, header.sampleRateHz) >= needed,
  );
  if (index < 0) throw new RangeError("no MP3 frame of this format can hold the Info tag");
  const frameBytes = frameLength(
    header.samplesPerFrame,
    kbpsTable[index] ?? 0,
    header.sampleRateHz,
  );
  const totalBytes = frameBytes + layout.audioBytes;
  if (totalBytes > 0xffffffff) {
    throw new RangeError(`the MP3 stream of ${totalBytes} bytes is too long for an Info tag`);
  }
  const frame = new Uint8Array(frameBytes);
  const view = new DataView(frame.buffer);
  const rateIndex = RATES_BY_VERSION[header.versionBits]?.indexOf(header.sampleRateHz) ?? 0;
  // No CRC protection, no padding bit; channel mode as in the stream (mono or stereo).
  frame[0] = 0xff;
  frame[1] = 0xe0 | (header.versionBits << 3) | (1 << 1) | 1;
  frame[2] = (index << 4) | (rateIndex << 2);
  frame[3] = header.channels === 1 ? 0xc0 : 0x00;
  const sideInfoBytes = header.sideInfoBytes - (header.crcProtected ? 2 : 0);
  let o = 4 + sideInfoBytes;
  const ascii = (text: string) => {
    for (let i = 0; i < text.length; i++) frame[o + i] = text.charCodeAt(i);
    o += text.length;
  };
  ascii("Info");
  view.setUint32(o, FLAG_FRAMES | FLAG_BYTES | FLAG_TOC | FLAG_QUALITY);
  view.setUint32(o + 4, layout.audioFrames);
  view.setUint32(o + 8, totalBytes);
  // Constant bit rate: the byte offset of i % of the playing time is i % of the bytes.
  for (let i = 0; i < 100; i++) frame[o + 12 + i] = Math.floor((256 * i) / 100);
  // LAME's quality indicator: 100 - 10 × VBR quality (4, unused for CBR) - quality (3, lamejs).
  view.setUint32(o + 112, 57);
  o += 116;
  ascii(LAME_VERSION);
  frame[o++] = 0x01; // tag revision 0, method 1 = constant bit rate
  o += 1 + 4 + 2 + 2 + 1; // lowpass, peak, radio and audiophile gain, flags: unknown (0)
  frame[o++] = Math.min(255, header.bitrateKbps);
  const delay = LAME_ENCODER_DELAY_SAMPLES;
  const pad = layout.paddingSamples;
  frame[o++] = delay >> 4;
  frame[o++] = ((delay & 0x0f) << 4) | (pad >> 8);
  frame[o++] = pad & 0xff;
  o += 1 + 1 + 2; // misc, MP3 gain, preset
  view.setUint32(o, totalBytes);
  o += 4 + 2; // music length, music CRC (0)
  view.setUint16(o, crc16(frame.subarray(0, o)));
  return frame;
}

/**
 * Reads the Xing/Info tag (and its LAME extension) from the frame at the start of `frame`;
 * undefined when that frame carries none.
 */
export function readMp3InfoTag(frame: Uint8Array): Mp3InfoTag | undefined {
  const header = parseMp3FrameHeader(frame, 0);
  if (!header) return undefined;
  const end = Math.min(frame.length, header.frameBytes);
  let o = 4 + header.sideInfoBytes;
  if (o + 8 > end) return undefined;
  const text = (at: number, length: number) =>
    String.fromCharCode(...frame.subarray(at, Math.min(end, at + length)));
  const kind = text(o, 4);
  if (kind !== "Info" && kind !== "Xing") return undefined;
  const view = new DataView(frame.buffer, frame.byteOffset, end);
  const flags = view.getUint32(o + 4);
  o += 8;
  const tag: Mp3InfoTag = { kind };
  const u32 = () => {
    const value = o + 4 <= end ? view.getUint32(o) : 0;
    o += 4;
    return value;
  };
  if (flags & FLAG_FRAMES) tag.frames = u32();
  if (flags & FLAG_BYTES) tag.bytes = u32();
  if (flags & FLAG_TOC) o += 100;
  if (flags & FLAG_QUALITY) o += 4;
  const encoder = text(o, 4);
  if (o + LAME_EXTENSION_BYTES <= end && ["LAME", "Lavf", "Lavc"].includes(encoder)) {
    const delays = o + 21;
    const b0 = frame[delays] ?? 0;
    const b1 = frame[delays + 1] ?? 0;
    const b2 = frame[delays + 2] ?? 0;
    tag.gapless = {
      encoderDelaySamples: (b0 << 4) | (b1 >> 4),
      paddingSamples: ((b1 & 0x0f) << 8) | b2,
    };
    const crcAt = o + LAME_EXTENSION_BYTES - 2;
    tag.crcValid = view.getUint16(crcAt) === crc16(frame.subarray(0, crcAt));
  }
  return tag;
}

/** CRC-16/ARC (polynomial 0x8005 reflected, initial 0), as the LAME tag uses. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}
