import { describe, expect, it } from "vitest";
import {
  encodeWavHeader,
  isWavFormatError,
  parseWav,
  WAV_HEADER_BYTES,
  WAV_UNKNOWN_SIZE,
  WavFormatError,
  wavDurationMs,
} from "./wav.js";

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function chunk(id: string, body: Uint8Array, declaredSize = body.length): Uint8Array {
  const header = new Uint8Array(8);
  header.set([...id].map((c) => c.charCodeAt(0)));
  new DataView(header.buffer).setUint32(4, declaredSize, true);
  // Odd-sized bodies carry a pad byte.
  return concat(header, body, new Uint8Array(body.length % 2));
}

function riff(...chunks: Uint8Array[]): Uint8Array {
  const body = concat(...chunks);
  const head = new Uint8Array(12);
  head.set([..."RIFF"].map((c) => c.charCodeAt(0)));
  new DataView(head.buffer).setUint32(4, body.length + 4, true);
  head.set(
    [..."WAVE"].map((c) => c.charCodeAt(0)),
    8,
  );
  return concat(head, body);
}

function fmtBody(fields: {
  tag?: number;
  channels?: number;
  rate?: number;
  bits?: number;
  blockAlign?: number;
}): Uint8Array {
  const { tag = 1, channels = 1, rate = 16000, bits = 16 } = fields;
  const blockAlign = fields.blockAlign ?? (channels * bits) / 8;
  const body = new Uint8Array(16);
  const view = new DataView(body.buffer);
  view.setUint16(0, tag, true);
  view.setUint16(2, channels, true);
  view.setUint32(4, rate, true);
  view.setUint32(8, rate * blockAlign, true);
  view.setUint16(12, blockAlign, true);
  view.setUint16(14, bits, true);
  return body;
}

function expectWavError(bytes: Uint8Array, message: RegExp): void {
  let caught: unknown;
  try {
    parseWav(bytes);
  } catch (err) {
    caught = err;
  }
  expect(isWavFormatError(caught)).toBe(true);
  expect((caught as WavFormatError).message).toMatch(message);
}

describe("encodeWavHeader", () => {
  it("writes the canonical 44-byte PCM header", () => {
    const header = encodeWavHeader({ sampleRateHz: 22050, channels: 1, dataBytes: 112082 });
    expect(header.length).toBe(WAV_HEADER_BYTES);
    // Byte-exact against the header espeak-ng wrote for a 112082-byte mono 22050 Hz file.
    expect(Buffer.from(header).toString("hex")).toBe(
      "52494646f6b5010057415645666d742010000000010001002256000044ac00000200100064617461d2b50100",
    );
  });

  it("writes stereo byte rate and block align", () => {
    const info = parseWav(
      concat(
        encodeWavHeader({ sampleRateHz: 48000, channels: 2, dataBytes: 8 }),
        new Uint8Array(8),
      ),
    );
    expect(info).toEqual({
      sampleRateHz: 48000,
      channels: 2,
      bitsPerSample: 16,
      dataOffset: 44,
      dataBytes: 8,
    });
    const view = new DataView(encodeWavHeader({ sampleRateHz: 48000, channels: 2 }).buffer);
    expect(view.getUint32(28, true)).toBe(192000);
    expect(view.getUint16(32, true)).toBe(4);
  });

  it("writes the streaming form when dataBytes is undefined", () => {
    const view = new DataView(encodeWavHeader({ sampleRateHz: 24000, channels: 1 }).buffer);
    expect(view.getUint32(4, true)).toBe(WAV_UNKNOWN_SIZE);
    expect(view.getUint32(40, true)).toBe(WAV_UNKNOWN_SIZE);
    const explicit = encodeWavHeader({ sampleRateHz: 24000, channels: 1, dataBytes: undefined });
    expect(new DataView(explicit.buffer).getUint32(40, true)).toBe(WAV_UNKNOWN_SIZE);
  });

  it.each([
    [{ sampleRateHz: 0, channels: 1 }, /sampleRateHz/],
    [{ sampleRateHz: 22050.5, channels: 1 }, /sampleRateHz/],
    [{ sampleRateHz: 22050, channels: 0 }, /channels/],
    [{ sampleRateHz: 22050, channels: 1, dataBytes: -2 }, /dataBytes/],
    [{ sampleRateHz: 22050, channels: 1, dataBytes: 3 }, /whole number/],
    [{ sampleRateHz: 22050, channels: 2, dataBytes: 6 }, /whole number/],
    [{ sampleRateHz: 22050, channels: 1, dataBytes: 0xffff_fff0 }, /32-bit/],
  ])("rejects %j", (options, message) => {
    expect(() => encodeWavHeader(options)).toThrow(RangeError);
    expect(() => encodeWavHeader(options)).toThrow(message);
  });
});

describe("parseWav", () => {
  it("round-trips an encoded header", () => {
    const pcm = new Uint8Array(22050 * 2);
    const info = parseWav(
      concat(encodeWavHeader({ sampleRateHz: 22050, channels: 1, dataBytes: pcm.length }), pcm),
    );
    expect(info).toEqual({
      sampleRateHz: 22050,
      channels: 1,
      bitsPerSample: 16,
      dataOffset: 44,
      dataBytes: 44100,
    });
    expect(wavDurationMs(info)).toBe(1000);
  });

  it("skips LIST and odd-sized chunks before data", () => {
    const list = chunk("LIST", new TextEncoder().encode("INFOISFT\x05\x00\x00\x00sox\x00\x00"));
    const odd = chunk("junk", new Uint8Array(3));
    const bytes = riff(
      chunk("fmt ", fmtBody({ rate: 8000 })),
      list,
      odd,
      chunk("data", new Uint8Array(10)),
    );
    const info = parseWav(bytes);
    expect(info.sampleRateHz).toBe(8000);
    expect(info.dataBytes).toBe(10);
    expect(info.dataOffset).toBe(bytes.length - 10);
  });

  it("clamps the streaming data size to the buffer, in whole frames", () => {
    const header = encodeWavHeader({ sampleRateHz: 16000, channels: 2 });
    const info = parseWav(concat(header, new Uint8Array(103)));
    expect(info.dataOffset).toBe(44);
    expect(info.dataBytes).toBe(100);
  });

  it("clamps a data size that runs past a partly received file", () => {
    const header = encodeWavHeader({ sampleRateHz: 16000, channels: 1, dataBytes: 1000 });
    expect(parseWav(concat(header, new Uint8Array(64))).dataBytes).toBe(64);
  });

  it("accepts WAVE_FORMAT_EXTENSIBLE with the PCM sub-format", () => {
    const body = new Uint8Array(40);
    body.set(fmtBody({ tag: 0xfffe, channels: 2, rate: 44100, bits: 24 }));
    const view = new DataView(body.buffer);
    view.setUint16(16, 22, true);
    view.setUint16(18, 24, true);
    view.setUint32(20, 3, true);
    body.set([1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71], 24);
    const info = parseWav(riff(chunk("fmt ", body), chunk("data", new Uint8Array(12))));
    expect(info).toMatchObject({
      sampleRateHz: 44100,
      channels: 2,
      bitsPerSample: 24,
      dataBytes: 12,
    });

    body[24] = 3; // IEEE float sub-format
    expectWavError(riff(chunk("fmt ", body), chunk("data", new Uint8Array(12))), /EXTENSIBLE/);
  });

  it("reports durations of other formats", () => {
    expect(
      wavDurationMs({ sampleRateHz: 8000, channels: 2, bitsPerSample: 8, dataBytes: 8000 }),
    ).toBe(500);
  });

  it.each([
    ["empty input", new Uint8Array(0), /not a RIFF\/WAVE/],
    [
      "an MP3 frame",
      new Uint8Array([0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0, 0, 0, 0, 0]),
      /not a RIFF\/WAVE/,
    ],
    [
      "RIFF of another form",
      new TextEncoder().encode("RIFF\x04\x00\x00\x00AVI "),
      /not a RIFF\/WAVE/,
    ],
    [
      "IEEE float",
      riff(chunk("fmt ", fmtBody({ tag: 3, bits: 32 })), chunk("data", new Uint8Array(4))),
      /format tag 0x3/,
    ],
    [
      "A-law",
      riff(chunk("fmt ", fmtBody({ tag: 6, bits: 8 })), chunk("data", new Uint8Array(4))),
      /format tag 0x6/,
    ],
    [
      "12-bit samples",
      riff(chunk("fmt ", fmtBody({ bits: 12, blockAlign: 2 })), chunk("data", new Uint8Array(4))),
      /12 bits/,
    ],
    [
      "a wrong block align",
      riff(chunk("fmt ", fmtBody({ blockAlign: 4 })), chunk("data", new Uint8Array(4))),
      /block align/,
    ],
    [
      "zero channels",
      riff(
        chunk("fmt ", fmtBody({ channels: 0, blockAlign: 0 })),
        chunk("data", new Uint8Array(4)),
      ),
      /0 channels/,
    ],
    [
      "a short fmt chunk",
      riff(chunk("fmt ", new Uint8Array(14)), chunk("data", new Uint8Array(4))),
      /at least 16/,
    ],
    [
      "data before fmt",
      riff(chunk("data", new Uint8Array(4)), chunk("fmt ", fmtBody({}))),
      /before the fmt/,
    ],
    ["no data chunk", riff(chunk("fmt ", fmtBody({}))), /no data chunk/],
    ["no fmt chunk", riff(chunk("LIST", new Uint8Array(4))), /no fmt chunk/],
    [
      "a truncated LIST chunk",
      riff(chunk("fmt ", fmtBody({})), chunk("LIST", new Uint8Array(4), 4000)),
      /"LIST" runs past/,
    ],
  ])("rejects %s with WavFormatError", (_name, bytes, message) => {
    expectWavError(bytes, message);
  });

  it("guards only WavFormatError", () => {
    expect(isWavFormatError(new WavFormatError("x"))).toBe(true);
    expect(isWavFormatError(new Error("x"))).toBe(false);
    expect(isWavFormatError("x")).toBe(false);
  });

  it("reads a view into a larger buffer at its own offset", () => {
    const wav = concat(
      encodeWavHeader({ sampleRateHz: 11025, channels: 1, dataBytes: 2 }),
      new Uint8Array(2),
    );
    const padded = concat(new Uint8Array(7), wav);
    expect(parseWav(padded.subarray(7)).sampleRateHz).toBe(11025);
  });
});
