import { describe, expect, it } from "vitest";
import { createMp3Encoder, MP3_SAMPLE_RATES_HZ, readMp3Frames } from "./mp3-encoder.js";
import { parseMp3FrameHeader, readMp3InfoTag } from "./mp3-info-frame.js";

/** `frames` frames of a 300 Hz tone, `channels` interleaved, as 16-bit little-endian PCM. */
function tone(sampleRateHz: number, channels: number, frames: number): Uint8Array {
  const pcm = new Uint8Array(frames * channels * 2);
  const view = new DataView(pcm.buffer);
  for (let i = 0; i < frames; i++) {
    const sample = Math.round(10_000 * Math.sin((2 * Math.PI * 300 * i) / sampleRateHz));
    for (let c = 0; c < channels; c++) view.setInt16((i * channels + c) * 2, sample, true);
  }
  return pcm;
}

const join = (parts: readonly Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

describe("createMp3Encoder", () => {
  it.each(MP3_SAMPLE_RATES_HZ.flatMap((rate) => [[rate, 1] as const, [rate, 2] as const]))(
    "encodes %d Hz with %d channel(s) into frames that play as long as the input",
    (sampleRateHz, channels) => {
      const encoder = createMp3Encoder({ sampleRateHz, channels });
      const second = tone(sampleRateHz, channels, sampleRateHz);
      const out = join([encoder.encode(second), encoder.flush()]);
      const info = readMp3Frames(out);
      const frameMs = ((sampleRateHz >= 32000 ? 1152 : 576) * 1000) / sampleRateHz;
      expect(info.sampleRateHz).toBe(sampleRateHz);
      expect(info.channels).toBe(channels);
      // MPEG-2.5 (8 to 12 kHz) tops out at 64 kbit/s; LAME takes the nearest allowed rate.
      expect(info.bitrateKbps).toBe(sampleRateHz < 16000 ? 64 : 64 * channels);
      expect(info.durationMs).toBeGreaterThanOrEqual(1000);
      expect(info.durationMs).toBeLessThanOrEqual(1000 + 4 * frameMs);
    },
  );

  it("gives frames back while input arrives, not only at flush", () => {
    const encoder = createMp3Encoder({ sampleRateHz: 22050, channels: 1, bitrateKbps: 32 });
    const outputs: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) outputs.push(encoder.encode(tone(22050, 1, 2205)));
    const tail = encoder.flush();
    expect(outputs.filter((o) => o.byteLength > 0).length).toBeGreaterThanOrEqual(15);
    // Every non-empty piece starts on a frame boundary and is made of whole frames.
    for (const piece of outputs.filter((o) => o.byteLength > 0)) {
      expect(readMp3Frames(piece).frames).toBeGreaterThan(0);
    }
    const info = readMp3Frames(join([...outputs, tail]));
    expect(info.bitrateKbps).toBe(32);
    expect(info.durationMs).toBeGreaterThanOrEqual(2000);
    expect(encoder.flush().byteLength).toBe(0);
    expect(() => encoder.encode(new Uint8Array(2))).toThrow(/already flushed/);
  });

  it("reads PCM at an odd byte offset of a shared buffer", () => {
    const pcm = tone(16000, 1, 16000);
    const shifted = new Uint8Array(pcm.byteLength + 1);
    shifted.set(pcm, 1);
    const a = createMp3Encoder({ sampleRateHz: 16000, channels: 1 });
    const b = createMp3Encoder({ sampleRateHz: 16000, channels: 1 });
    const direct = join([a.encode(pcm), a.flush()]);
    const fromView = join([b.encode(shifted.subarray(1)), b.flush()]);
    expect(Buffer.from(fromView).equals(Buffer.from(direct))).toBe(true);
  });

  it.each([
    [{ sampleRateHz: 96000, channels: 1 }, /cannot carry 96000 Hz/],
    [{ sampleRateHz: 22050, channels: 3 }, /1 or 2 channels, not 3/],
    [{ sampleRateHz: 22050, channels: 1, bitrateKbps: 0 }, /bitrateKbps/],
  ])("refuses %j", (options, message) => {
    expect(() => createMp3Encoder(options)).toThrow(RangeError);
    expect(() => createMp3Encoder(options)).toThrow(message);
  });

  it("refuses a chunk that is not whole frames", () => {
    const encoder = createMp3Encoder({ sampleRateHz: 22050, channels: 2 });
    expect(() => encoder.encode(new Uint8Array(6))).toThrow(/not a whole number of 4-byte frames/);
    expect(encoder.encode(new Uint8Array(0)).byteLength).toBe(0);
  });
});

describe("readMp3Frames", () => {
  it.each([
    ["empty input", new Uint8Array(0), /empty/],
    ["a WAV header", new TextEncoder().encode("RIFF\u0000\u0000\u0000\u0000WAVE"), /byte 0/],
    ["a Layer II header", new Uint8Array([0xff, 0xfd, 0x90, 0xc4]), /byte 0/],
  ])("rejects %s", (_name, bytes, message) => {
    expect(() => readMp3Frames(bytes)).toThrow(message);
  });

  it("rejects a stream whose last frame is cut short", () => {
    const encoder = createMp3Encoder({ sampleRateHz: 24000, channels: 1 });
    const whole = join([encoder.encode(tone(24000, 1, 24000)), encoder.flush()]);
    expect(() => readMp3Frames(whole.subarray(0, whole.length - 10))).toThrow(/cut short/);
  });

  it("reads the lower sample rate LAME picks for a bit rate too low for the input", () => {
    const encoder = createMp3Encoder({ sampleRateHz: 48000, channels: 2, bitrateKbps: 64 });
    const info = readMp3Frames(join([encoder.encode(tone(48000, 2, 48000)), encoder.flush()]));
    expect(info.sampleRateHz).toBeLessThan(48000);
    expect(info.durationMs).toBeGreaterThanOrEqual(1000);
    expect(info.durationMs).toBeLessThan(1100);
  });
});

describe("the LAME Info frame (totalPcmFrames)", () => {
  const encodeWhole = (sampleRateHz: number, channels: number, frames: number, kbps?: number) => {
    const encoder = createMp3Encoder({
      sampleRateHz,
      channels,
      totalPcmFrames: frames,
      ...(kbps ? { bitrateKbps: kbps } : {}),
    });
    const pcm = tone(sampleRateHz, channels, frames);
    // Uneven chunks, as a render's store hands them over.
    const parts: Uint8Array[] = [];
    const step = 777 * channels * 2;
    for (let at = 0; at < pcm.byteLength; at += step) {
      parts.push(encoder.encode(pcm.subarray(at, Math.min(pcm.byteLength, at + step))));
    }
    return join([...parts, encoder.flush()]);
  };

  // Lengths around frame boundaries (576 and 1152 samples) and LAME's 576-sample delay.
  const lengths = [1, 575, 576, 577, 1151, 1152, 1153, 1728, 5000];
  it.each(MP3_SAMPLE_RATES_HZ.flatMap((rate) => [[rate, 1] as const, [rate, 2] as const]))(
    "%d Hz, %d channel(s): the tag's frame count, byte count, delay and padding match the stream",
    (sampleRateHz, channels) => {
      for (const frames of lengths) {
        const out = encodeWhole(sampleRateHz, channels, frames);
        const tag = readMp3InfoTag(out);
        const info = readMp3Frames(out);
        expect(tag, `${frames} frames`).toMatchObject({
          kind: "Info",
          frames: info.frames,
          bytes: out.byteLength,
          crcValid: true,
          gapless: { encoderDelaySamples: 576 },
        });
        expect(info.gapless?.pcmFrames, `${frames} frames`).toBe(frames);
        expect(info.sampleRateHz).toBe(sampleRateHz);
      }
    },
  );

  it("puts the tag in a larger frame when the stream's frames are too small for it", () => {
    // 16 kHz mono at 32 kbit/s: 144-byte frames; the tag needs 4 + 9 + 156 bytes.
    const out = encodeWhole(16_000, 1, 16_000, 32);
    const info = readMp3Frames(out);
    expect(parseMp3FrameHeader(out, 0)?.bitrateKbps).toBeGreaterThan(32);
    expect(info.bitrateKbps).toBe(32);
    expect(info.gapless?.pcmFrames).toBe(16_000);
    expect(readMp3InfoTag(out)).toMatchObject({ bytes: out.byteLength, crcValid: true });
  });

  it("writes no tag when LAME resamples (a bit rate too low for the input's rate)", () => {
    const out = encodeWhole(11_025, 1, 11_025, 8);
    expect(readMp3InfoTag(out)).toBeUndefined();
    expect(readMp3Frames(out).sampleRateHz).toBeLessThan(11_025);
  });

  it("a stream without a known length has no tag and plays delay and padding too", () => {
    const encoder = createMp3Encoder({ sampleRateHz: 22_050, channels: 1 });
    const out = join([encoder.encode(tone(22_050, 1, 22_050)), encoder.flush()]);
    expect(readMp3InfoTag(out)).toBeUndefined();
    expect(readMp3Frames(out).gapless).toBeUndefined();
  });

  it("refuses a flush after more or fewer frames than announced, and a bad length", () => {
    const encoder = createMp3Encoder({ sampleRateHz: 22_050, channels: 1, totalPcmFrames: 1000 });
    encoder.encode(tone(22_050, 1, 999));
    expect(() => encoder.flush()).toThrow(/announced as 1000 PCM frames but 999 were encoded/);
    for (const totalPcmFrames of [-1, 1.5, Number.NaN]) {
      expect(() => createMp3Encoder({ sampleRateHz: 22_050, channels: 1, totalPcmFrames })).toThrow(
        /totalPcmFrames must be a non-negative integer/,
      );
    }
  });
});
