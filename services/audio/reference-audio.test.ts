import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createMp3Encoder } from "./mp3-encoder.js";
import {
  inspectReferenceAudio,
  isReferenceAudioError,
  type ReferenceAudioError,
  type ReferenceAudioLimits,
} from "./reference-audio.js";
import { encodeWavHeader } from "./wav.js";

const LIMITS: ReferenceAudioLimits = { maxBytes: 10 * 1024 * 1024, maxDurationMs: 60_000 };

async function refusal(bytes: Uint8Array, limits = LIMITS): Promise<ReferenceAudioError> {
  try {
    await inspectReferenceAudio(bytes, limits);
  } catch (err) {
    if (isReferenceAudioError(err)) {
      return err;
    }
    throw err;
  }
  throw new Error("expected the audio to be refused");
}

function wav(seconds: number, sampleRateHz = 22050, channels = 1): Uint8Array {
  const dataBytes = Math.round(seconds * sampleRateHz) * channels * 2;
  const pcm = new Int16Array(dataBytes / 2).map((_, i) => Math.round(8000 * Math.sin(i / 7)));
  return Buffer.concat([
    encodeWavHeader({ sampleRateHz, channels, dataBytes }),
    new Uint8Array(pcm.buffer),
  ]);
}

// 32-bit float WAV (format tag 3), as many editors export.
function floatWav(seconds: number, sampleRateHz: number): Uint8Array {
  const samples = new Float32Array(Math.round(seconds * sampleRateHz)).map((_, i) =>
    Math.sin(i / 5),
  );
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "latin1");
  header.writeUInt32LE(36 + samples.byteLength, 4);
  header.write("WAVEfmt ", 8, "latin1");
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(3, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(sampleRateHz, 24);
  header.writeUInt32LE(sampleRateHz * 4, 28);
  header.writeUInt16LE(4, 32);
  header.writeUInt16LE(32, 34);
  header.write("data", 36, "latin1");
  header.writeUInt32LE(samples.byteLength, 40);
  return Buffer.concat([header, new Uint8Array(samples.buffer)]);
}

function mp3(seconds: number): Uint8Array {
  const encoder = createMp3Encoder({ sampleRateHz: 22050, channels: 1 });
  const pcm = new Int16Array(Math.round(seconds * 22050)).map((_, i) =>
    Math.round(8000 * Math.sin(i / 9)),
  );
  return Buffer.concat([encoder.encode(new Uint8Array(pcm.buffer)), encoder.flush()]);
}

// "fLaC" and one STREAMINFO block (the last metadata block); the header alone gives the duration.
function flac(seconds: number, sampleRateHz = 44100, channels = 2): Uint8Array {
  const info = Buffer.alloc(34);
  info.writeUInt16BE(4096, 0); // min block size
  info.writeUInt16BE(4096, 2); // max block size
  // bytes 4-9: min/max frame size unknown (0)
  const totalSamples = BigInt(Math.round(seconds * sampleRateHz));
  // 20 bits rate, 3 bits channels-1, 5 bits bits-per-sample-1, 36 bits total samples.
  const packed =
    (BigInt(sampleRateHz) << 44n) |
    (BigInt(channels - 1) << 41n) |
    (BigInt(16 - 1) << 36n) |
    totalSamples;
  info.writeBigUInt64BE(packed, 10);
  // bytes 18-33: MD5 of the audio, zero when unknown.
  const blockHeader = Buffer.from([0x80, 0, 0, 34]); // last block, type 0 (STREAMINFO), 34 bytes
  return Buffer.concat([Buffer.from("fLaC", "latin1"), blockHeader, info]);
}

// Ogg Vorbis: identification and comment headers, then a last page whose granule position is the
// total sample count; each page with its CRC.
function oggVorbis(seconds: number, sampleRateHz = 44100): Uint8Array {
  const identification = Buffer.alloc(30);
  identification.writeUInt8(1, 0);
  identification.write("vorbis", 1, "latin1");
  identification.writeUInt32LE(0, 7); // version
  identification.writeUInt8(1, 11); // channels
  identification.writeUInt32LE(sampleRateHz, 12);
  identification.writeInt32LE(0, 16);
  identification.writeInt32LE(64_000, 20); // nominal bitrate
  identification.writeInt32LE(0, 24);
  identification.writeUInt8(0xb8, 28); // block sizes 256 / 2048
  identification.writeUInt8(1, 29); // framing
  const vendor = Buffer.from("voxgate test", "latin1");
  const comment = Buffer.concat([
    Buffer.from([3]),
    Buffer.from("vorbis", "latin1"),
    uint32(vendor.length),
    vendor,
    uint32(0),
    Buffer.from([1]),
  ]);
  const granule = BigInt(Math.round(seconds * sampleRateHz));
  return Buffer.concat([
    oggPage(0x02, 0n, 0, identification),
    oggPage(0x00, 0n, 1, comment),
    oggPage(0x04, granule, 2, Buffer.alloc(40, 0x55)),
  ]);
}

function uint32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
}

function oggPage(flags: number, granule: bigint, sequence: number, body: Buffer): Buffer {
  const header = Buffer.alloc(27 + 1);
  header.write("OggS", 0, "latin1");
  header.writeUInt8(0, 4);
  header.writeUInt8(flags, 5);
  header.writeBigUInt64LE(granule, 6);
  header.writeUInt32LE(0x1234, 14); // stream serial
  header.writeUInt32LE(sequence, 18);
  header.writeUInt8(1, 26); // one segment
  header.writeUInt8(body.length, 27);
  const page = Buffer.concat([header, body]);
  page.writeUInt32LE(oggCrc(page), 22);
  return page;
}

function oggCrc(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 24;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
    }
  }
  return crc >>> 0;
}

// A real PNG: signature, IHDR of a 1x1 RGBA image, IDAT, IEND (CRCs as written by libpng).
const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d4948445200000001000000010806000000" +
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082",
  "hex",
);

describe("inspectReferenceAudio", () => {
  it.each([
    { name: "16-bit WAV", bytes: wav(2.5), type: "audio/wav", durationMs: 2500, rate: 22050 },
    {
      name: "stereo WAV",
      bytes: wav(1, 48000, 2),
      type: "audio/wav",
      durationMs: 1000,
      rate: 48000,
    },
    {
      name: "float WAV",
      bytes: floatWav(1.5, 16000),
      type: "audio/wav",
      durationMs: 1500,
      rate: 16000,
    },
    { name: "FLAC", bytes: flac(3), type: "audio/flac", durationMs: 3000, rate: 44100 },
    { name: "Ogg Vorbis", bytes: oggVorbis(4), type: "audio/ogg", durationMs: 4000, rate: 44100 },
  ])(
    "accepts $name and reads its duration from the header",
    async ({ bytes, type, durationMs, rate }) => {
      const info = await inspectReferenceAudio(bytes, LIMITS);
      expect(info.contentType).toBe(type);
      expect(info.durationMs).toBe(durationMs);
      expect(info.sampleRateHz).toBe(rate);
    },
  );

  it("accepts MP3 and measures it within one frame", async () => {
    const info = await inspectReferenceAudio(mp3(2), LIMITS);
    expect(info.contentType).toBe("audio/mpeg");
    expect(info.sampleRateHz).toBe(22050);
    expect(info.channels).toBe(1);
    // An MP3 frame at 22050 Hz is 576 samples (26 ms); encoders add up to a frame or two.
    expect(Math.abs(info.durationMs - 2000)).toBeLessThan(110);
  });

  it("refuses a real PNG labelled as anything, naming what it is and what is accepted", async () => {
    const err = await refusal(PNG);
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toBe(
      "reference audio is image/png (.png) by its magic bytes; accepted: WAV, MP3, FLAC or OGG",
    );
  });

  it("refuses bytes of no known type", async () => {
    const err = await refusal(Buffer.from("hello, this is not audio at all, just text\n"));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toContain("of no known type");
  });

  it("refuses a 10-hour WAV header on a tiny body by its declared duration", async () => {
    const header = encodeWavHeader({
      sampleRateHz: 22050,
      channels: 1,
      dataBytes: 10 * 3600 * 22050 * 2,
    });
    const err = await refusal(Buffer.concat([header, Buffer.alloc(4000)]));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toBe(
      "reference audio lasts 36000 s; the limit is 60 s (max reference seconds: VOXGATE_MAX_REFERENCE_SECONDS)",
    );
  });

  it("refuses a truncated WAV whose declared length is within the limit", async () => {
    const whole = wav(5);
    const err = await refusal(whole.subarray(0, 44 + 22050 * 2));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toBe(
      "reference audio is truncated: its WAV header declares 176400 bytes more audio than the file holds",
    );
  });

  it("refuses a WAV cut inside its header and a FLAC without STREAMINFO", async () => {
    const cut = await refusal(wav(1).subarray(0, 30));
    expect(cut.code).toBe(Code.InvalidArgument);
    expect(cut.message).toMatch(/^reference audio is not a readable WAV file/);
    const bare = await refusal(Buffer.from("fLaC\x00\x00", "latin1"));
    expect(bare.code).toBe(Code.InvalidArgument);
  });

  it("refuses long compressed audio by the duration in its header", async () => {
    const err = await refusal(flac(3600));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toContain("lasts 3600 s; the limit is 60 s");
    expect(err.message).toContain("VOXGATE_MAX_REFERENCE_SECONDS");
    const ogg = await refusal(oggVorbis(120));
    expect(ogg.message).toContain("lasts 120 s");
  });

  it("refuses oversized uploads before looking at them, and empty ones", async () => {
    const big = await refusal(wav(1), { ...LIMITS, maxBytes: 1000 });
    expect(big.code).toBe(Code.ResourceExhausted);
    expect(big.message).toBe(
      "reference audio is 44144 bytes; the limit is 1000 (max reference bytes: VOXGATE_MAX_REFERENCE_BYTES)",
    );
    const empty = await refusal(new Uint8Array(0));
    expect(empty.code).toBe(Code.InvalidArgument);
  });

  it("refuses audio shorter than minDurationMs", async () => {
    const err = await refusal(wav(0.5), { ...LIMITS, minDurationMs: 1000 });
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toBe("reference audio lasts 0.5 s; at least 1 s is needed");
  });
});
