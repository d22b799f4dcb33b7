import { describe, expect, it } from "vitest";
import { encodeWavHeader, isWavFormatError } from "../audio/wav.js";
import {
  type AudioDecodeError,
  decodeAudioForAnalysis,
  isAudioDecodeError,
} from "./decode-audio.js";
import { readWavLayout } from "./wav-reader.js";

// A WAV file with any format tag and sample width, optionally WAVE_FORMAT_EXTENSIBLE and with a
// LIST chunk before the data, built byte by byte.
function wavBytes(options: {
  tag: 1 | 3;
  bits: number;
  channels: number;
  rate: number;
  data: Uint8Array;
  extensible?: boolean;
  list?: boolean;
}): Uint8Array {
  const { tag, bits, channels, rate, data } = options;
  const fmt = Buffer.alloc(options.extensible ? 40 : 16);
  fmt.writeUInt16LE(options.extensible ? 0xfffe : tag, 0);
  fmt.writeUInt16LE(channels, 2);
  fmt.writeUInt32LE(rate, 4);
  fmt.writeUInt32LE((rate * channels * bits) / 8, 8);
  fmt.writeUInt16LE((channels * bits) / 8, 12);
  fmt.writeUInt16LE(bits, 14);
  if (options.extensible) {
    fmt.writeUInt16LE(22, 16);
    fmt.writeUInt16LE(bits, 18);
    fmt.writeUInt32LE(channels === 2 ? 3 : 4, 20);
    Buffer.from([tag, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]).copy(fmt, 24);
  }
  const chunk = (id: string, body: Uint8Array) => {
    const header = Buffer.alloc(8);
    header.write(id, 0, "latin1");
    header.writeUInt32LE(body.length, 4);
    return Buffer.concat([header, body, body.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
  };
  const chunks = Buffer.concat([
    chunk("fmt ", fmt),
    options.list
      ? chunk("LIST", Buffer.from("INFOISFT\x03\x00\x00\x00ab\x00", "latin1"))
      : Buffer.alloc(0),
    chunk("data", data),
  ]);
  const riff = Buffer.alloc(12);
  riff.write("RIFF", 0, "latin1");
  riff.writeUInt32LE(4 + chunks.length, 4);
  riff.write("WAVE", 8, "latin1");
  return Buffer.concat([riff, chunks]);
}

// The same four samples (0, half scale, -full scale, -quarter scale) in each encoding.
const EXPECTED = Int16Array.of(0, 16384, -32768, -8192);
const VALUES = [0, 0.5, -1, -0.25];

function encode(bits: number, float: boolean): Uint8Array {
  const out = Buffer.alloc((VALUES.length * bits) / 8);
  VALUES.forEach((v, i) => {
    const o = (i * bits) / 8;
    if (float) {
      bits === 32 ? out.writeFloatLE(v, o) : out.writeDoubleLE(v, o);
    } else if (bits === 8) {
      out.writeUInt8(Math.min(255, Math.round(v * 128) + 128), o);
    } else {
      const full = 2 ** (bits - 1);
      out.writeIntLE(Math.max(-full, Math.min(full - 1, Math.round(v * full))), o, bits / 8);
    }
  });
  return out;
}

describe("decodeAudioForAnalysis", () => {
  it.each([
    { bits: 8, tag: 1 as const },
    { bits: 16, tag: 1 as const },
    { bits: 24, tag: 1 as const },
    { bits: 32, tag: 1 as const },
    { bits: 32, tag: 3 as const },
    { bits: 64, tag: 3 as const },
    { bits: 24, tag: 1 as const, extensible: true },
    { bits: 32, tag: 3 as const, extensible: true, list: true },
  ])(
    "decodes $bits-bit tag $tag (extensible: $extensible) to 16 bits",
    ({ bits, tag, extensible, list }) => {
      const bytes = wavBytes({
        tag,
        bits,
        channels: 1,
        rate: 16_000,
        data: encode(bits, tag === 3),
        extensible: extensible ?? false,
        list: list ?? false,
      });
      const pcm = decodeAudioForAnalysis(bytes, "audio/wav");
      expect(pcm.sampleRateHz).toBe(16_000);
      expect(pcm.channels).toBe(1);
      expect(Array.from(pcm.samples)).toEqual(Array.from(EXPECTED));
    },
  );

  it("keeps stereo interleaved and clips float samples beyond full scale", () => {
    const data = Buffer.alloc(16);
    for (const [i, v] of [0.25, -0.25, 1.5, Number.NaN].entries()) {
      data.writeFloatLE(v, i * 4);
    }
    const pcm = decodeAudioForAnalysis(
      wavBytes({ tag: 3, bits: 32, channels: 2, rate: 44_100, data }),
      "audio/x-wav; codecs=3",
    );
    expect(pcm.channels).toBe(2);
    expect(Array.from(pcm.samples)).toEqual([8192, -8192, 32767, 0]);
  });

  it("reads the WAV the gateway writes, streaming header included", () => {
    const samples = Int16Array.of(1, -2, 3, -4);
    const body = new Uint8Array(samples.buffer);
    const streamed = Buffer.concat([encodeWavHeader({ sampleRateHz: 22_050, channels: 1 }), body]);
    expect(Array.from(decodeAudioForAnalysis(streamed, "").samples)).toEqual([1, -2, 3, -4]);
    expect(readWavLayout(streamed).declaredDataBytes).toBeUndefined();
  });

  it.each(["audio/mpeg", "audio/flac", "audio/ogg", "image/png"])(
    "refuses %s, naming what it reads",
    (contentType) => {
      let err: unknown;
      try {
        decodeAudioForAnalysis(new Uint8Array(100), contentType);
      } catch (caught) {
        err = caught;
      }
      expect(isAudioDecodeError(err)).toBe(true);
      expect((err as AudioDecodeError).message).toBe(`analysis reads WAV; got ${contentType}`);
    },
  );

  it.each([
    { name: "text labelled WAV", bytes: Buffer.from("not a wav file at all") },
    {
      name: "A-law WAV",
      bytes: wavBytes({ tag: 1, bits: 12, channels: 1, rate: 8000, data: Buffer.alloc(6) }),
    },
    {
      name: "a WAV without frames",
      bytes: encodeWavHeader({ sampleRateHz: 8000, channels: 1, dataBytes: 0 }),
    },
  ])("refuses $name", ({ bytes }) => {
    expect(() => decodeAudioForAnalysis(bytes, "audio/wav")).toThrow(/^analysis reads WAV; /);
  });
});

describe("readWavLayout", () => {
  it("reports the declared data size separately from the bytes present", () => {
    const header = encodeWavHeader({ sampleRateHz: 8000, channels: 1, dataBytes: 16_000 });
    const layout = readWavLayout(Buffer.concat([header, Buffer.alloc(101)]));
    expect(layout).toEqual({
      encoding: "int",
      sampleRateHz: 8000,
      channels: 1,
      bitsPerSample: 16,
      dataOffset: 44,
      declaredDataBytes: 16_000,
      dataBytes: 100,
    });
  });

  it("throws WavFormatError for a chunk that runs past the end", () => {
    const bytes = wavBytes({
      tag: 1,
      bits: 16,
      channels: 1,
      rate: 8000,
      data: Buffer.alloc(4),
      list: true,
    });
    let err: unknown;
    try {
      readWavLayout(bytes.subarray(0, 50));
    } catch (caught) {
      err = caught;
    }
    expect(isWavFormatError(err)).toBe(true);
  });
});
