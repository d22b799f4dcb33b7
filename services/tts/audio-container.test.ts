import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AudioEncoding, AudioFormatSchema } from "../../gen/voxgate/v1/audio_pb.js";
import { readMp3Frames } from "../audio/mp3-encoder.js";
import { parseWav, WAV_HEADER_BYTES } from "../audio/wav.js";
import { chooseContainer, isSupportedEncoding, MP3_SLICE_MS } from "./audio-container.js";

const pcm22k = create(AudioFormatSchema, {
  encoding: AudioEncoding.PCM,
  sampleRateHz: 22050,
  channels: 1,
});
const pcm48kStereo = create(AudioFormatSchema, {
  encoding: AudioEncoding.PCM,
  sampleRateHz: 48000,
  channels: 2,
});

const u32 = (bytes: Uint8Array, offset: number) =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, true);
const tag = (bytes: Uint8Array, offset: number) =>
  String.fromCharCode(...bytes.subarray(offset, offset + 4));

function errorOf(fn: () => unknown): ConnectError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected a ConnectError");
}

/** `seconds` of a 440 Hz tone as 16-bit little-endian PCM, in `chunks` equal chunks. */
function tone(sampleRateHz: number, channels: number, seconds: number, chunks = 1): Uint8Array[] {
  const frames = Math.round(sampleRateHz * seconds);
  const pcm = new Uint8Array(frames * channels * 2);
  const view = new DataView(pcm.buffer);
  for (let i = 0; i < frames; i++) {
    const sample = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / sampleRateHz));
    for (let c = 0; c < channels; c++) view.setInt16((i * channels + c) * 2, sample, true);
  }
  const frameBytes = channels * 2;
  const step = Math.ceil(frames / chunks) * frameBytes;
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < pcm.length; offset += step)
    out.push(pcm.subarray(offset, offset + step));
  return out;
}

const totalBytes = (parts: readonly Uint8Array[]) => parts.reduce((n, p) => n + p.byteLength, 0);
const join = (parts: readonly Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

/** Every piece `encode` gives for one chunk. */
async function pieces(
  encoded: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const piece of encoded) out.push(piece);
  return out;
}
const encodeAll = async (encoded: Iterable<Uint8Array> | AsyncIterable<Uint8Array>) =>
  join(await pieces(encoded));

describe("chooseContainer", () => {
  it.each([
    ["WAV", AudioEncoding.WAV],
    ["UNSPECIFIED", AudioEncoding.UNSPECIFIED],
  ])(
    "streams WAV for %s: the 44-byte streaming header in front of the first chunk only",
    async (_name, encoding) => {
      const container = chooseContainer(encoding, pcm22k);
      expect(container.contentType).toBe("audio/wav");
      const encoder = container.createStreamEncoder();
      const first = await encodeAll(encoder.encode(new Uint8Array([1, 2, 3, 4])));
      expect(first.byteLength).toBe(WAV_HEADER_BYTES + 4);
      expect(tag(first, 0)).toBe("RIFF");
      expect(u32(first, 4)).toBe(0xffff_ffff);
      expect(tag(first, 8)).toBe("WAVE");
      expect(tag(first, 36)).toBe("data");
      expect(u32(first, 40)).toBe(0xffff_ffff);
      expect(u32(first, 24)).toBe(22050);
      expect([...first.subarray(WAV_HEADER_BYTES)]).toEqual([1, 2, 3, 4]);
      expect([...(await encodeAll(encoder.encode(new Uint8Array([5, 6]))))]).toEqual([5, 6]);
      expect((await encoder.end()).byteLength).toBe(0);
    },
  );

  it("ends a WAV stream that had no audio with the header alone", async () => {
    const encoder = chooseContainer(AudioEncoding.WAV, pcm22k).createStreamEncoder();
    const tail = await encoder.end();
    expect(tail.byteLength).toBe(WAV_HEADER_BYTES);
    expect(u32(tail, 40)).toBe(0xffff_ffff);
    expect((await encoder.end()).byteLength).toBe(0);
  });

  it("gives each stream its own header", async () => {
    const container = chooseContainer(AudioEncoding.WAV, pcm22k);
    await encodeAll(container.createStreamEncoder().encode(new Uint8Array(2)));
    expect(
      (await encodeAll(container.createStreamEncoder().encode(new Uint8Array(2)))).byteLength,
    ).toBe(WAV_HEADER_BYTES + 2);
  });

  it("gives a whole WAV clip the exact RIFF and data sizes", async () => {
    const container = chooseContainer(AudioEncoding.WAV, pcm48kStereo);
    const clip = await container.encodeClip([new Uint8Array(1000), new Uint8Array(3000)], 4000);
    expect(clip.byteLength).toBe(WAV_HEADER_BYTES + 4000);
    expect(u32(clip, 4)).toBe(36 + 4000);
    expect(u32(clip, 40)).toBe(4000);
    expect(parseWav(clip)).toEqual({
      sampleRateHz: 48000,
      channels: 2,
      bitsPerSample: 16,
      dataOffset: 44,
      dataBytes: 4000,
    });
    const empty = await container.encodeClip([], 0);
    expect(u32(empty, 4)).toBe(36);
    expect(u32(empty, 40)).toBe(0);
  });

  it("passes raw PCM with an audio/L16 content type and no header", async () => {
    const container = chooseContainer(AudioEncoding.PCM, pcm22k);
    expect(container.contentType).toBe("audio/L16; rate=22050; channels=1");
    const encoder = container.createStreamEncoder();
    expect([...(await encodeAll(encoder.encode(new Uint8Array([7, 8]))))]).toEqual([7, 8]);
    expect((await encoder.end()).byteLength).toBe(0);
    expect([
      ...(await container.encodeClip([new Uint8Array([1, 2]), new Uint8Array([3, 4])], 4)),
    ]).toEqual([1, 2, 3, 4]);
    expect(chooseContainer(AudioEncoding.PCM, pcm48kStereo).contentType).toBe(
      "audio/L16; rate=48000; channels=2",
    );
  });

  it("encodes a whole MP3 clip: valid frames at the backend's rate, as long as the audio", async () => {
    const container = chooseContainer(AudioEncoding.MP3, pcm22k);
    expect(container.contentType).toBe("audio/mpeg");
    const pcm = tone(22050, 1, 2, 7);
    const clip = await container.encodeClip(pcm, totalBytes(pcm));
    expect(clip[0]).toBe(0xff);
    expect((clip[1] ?? 0) & 0xe0).toBe(0xe0);
    const info = readMp3Frames(clip);
    expect(info).toMatchObject({ sampleRateHz: 22050, channels: 1, bitrateKbps: 64 });
    // LAME adds its encoder delay and pads the last frame: at most a few 576-sample frames more.
    expect(info.durationMs).toBeGreaterThanOrEqual(2000);
    expect(info.durationMs).toBeLessThan(2000 + (4 * 576 * 1000) / 22050);
    // 64 kbit/s for about 2 s.
    expect(clip.byteLength).toBeGreaterThan(15_000);
    expect(clip.byteLength).toBeLessThan(18_000);
  });

  it("streams MP3 frame by frame as PCM arrives, the rest on end()", async () => {
    const encoder = chooseContainer(AudioEncoding.MP3, pcm48kStereo, {
      mp3BitrateKbps: 128,
    }).createStreamEncoder();
    const perChunk: Uint8Array[][] = [];
    for (const chunk of tone(48000, 2, 1, 10)) perChunk.push(await pieces(encoder.encode(chunk)));
    const tail = await encoder.end();
    expect(perChunk.filter((p) => p.length > 0).length).toBeGreaterThanOrEqual(8);
    expect(perChunk.flat().every((p) => p.byteLength > 0)).toBe(true);
    expect(tail.byteLength).toBeGreaterThan(0);
    expect((await encoder.end()).byteLength).toBe(0);
    const info = readMp3Frames(join([...perChunk.flat(), tail]));
    expect(info).toMatchObject({ sampleRateHz: 48000, channels: 2, bitrateKbps: 128 });
    expect(info.durationMs).toBeGreaterThanOrEqual(1000);
    expect(info.durationMs).toBeLessThan(1000 + (4 * 1152 * 1000) / 48000);
  });

  it(`cuts a long PCM chunk into ${MP3_SLICE_MS} ms slices, each sent as soon as it is encoded`, async () => {
    const encoder = chooseContainer(AudioEncoding.MP3, pcm22k).createStreamEncoder();
    const [twoSeconds] = tone(22050, 1, 2);
    const out = await pieces(encoder.encode(twoSeconds ?? new Uint8Array()));
    // 2 s in 250 ms slices: 8 slices; LAME's look-ahead may hold the first one back.
    expect(out.length).toBeGreaterThanOrEqual(7);
    expect(out.length).toBeLessThanOrEqual(8);
    for (const piece of out) expect(readMp3Frames(piece).frames).toBeGreaterThan(0);
  });

  it("refuses MP3 at a rate MP3 cannot carry with UNIMPLEMENTED naming the rates", () => {
    const odd = create(AudioFormatSchema, {
      encoding: AudioEncoding.PCM,
      sampleRateHz: 96000,
      channels: 1,
    });
    const error = errorOf(() => chooseContainer(AudioEncoding.MP3, odd));
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toContain("MP3 cannot carry this backend's 96000 Hz 1-channel audio");
    expect(error.rawMessage).toContain("22050");
  });

  it.each([
    [AudioEncoding.OPUS, "audio/ogg; codecs=opus", "OggS"],
    [AudioEncoding.FLAC, "audio/flac", "fLaC"],
  ])("streams encoding %d with its container signature first", async (encoding, type, magic) => {
    const container = chooseContainer(encoding, pcm22k);
    expect(container.contentType).toBe(type);
    const encoder = container.createStreamEncoder();
    const out: Uint8Array[] = [];
    for (const chunk of tone(22050, 1, 3, 30)) out.push(...(await pieces(encoder.encode(chunk))));
    out.push(await encoder.end());
    expect(Buffer.from(join(out).subarray(0, 4)).toString("latin1")).toBe(magic);
  });

  it("refuses Opus for more than two channels with UNIMPLEMENTED", () => {
    const six = create(AudioFormatSchema, {
      encoding: AudioEncoding.PCM,
      sampleRateHz: 48000,
      channels: 6,
    });
    const error = errorOf(() => chooseContainer(AudioEncoding.OPUS, six));
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toContain("opus is encoded here for 1 to 2 channels");
  });

  it("refuses an encoding it does not know with UNIMPLEMENTED", () => {
    const error = errorOf(() => chooseContainer(99 as AudioEncoding, pcm22k));
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toContain("use WAV, PCM, MP3, OPUS, FLAC or AAC");
  });

  it("refuses a backend format that is not PCM with INTERNAL", () => {
    const wav = create(AudioFormatSchema, {
      encoding: AudioEncoding.WAV,
      sampleRateHz: 22050,
      channels: 1,
    });
    const error = errorOf(() => chooseContainer(AudioEncoding.WAV, wav));
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("backend sent WAV audio; the gateway expects PCM");
  });
});

describe("isSupportedEncoding", () => {
  it("accepts every encoding of the enum", () => {
    for (const encoding of [
      AudioEncoding.UNSPECIFIED,
      AudioEncoding.WAV,
      AudioEncoding.PCM,
      AudioEncoding.MP3,
      AudioEncoding.FLAC,
      AudioEncoding.OPUS,
      AudioEncoding.AAC,
    ]) {
      expect(isSupportedEncoding(encoding)).toBe(true);
    }
    expect(isSupportedEncoding(99 as AudioEncoding)).toBe(false);
  });
});
