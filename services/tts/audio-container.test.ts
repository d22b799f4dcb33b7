import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AudioEncoding, AudioFormatSchema } from "../../gen/voxgate/v1/audio_pb.js";
import { parseWav, WAV_HEADER_BYTES } from "../audio/wav.js";
import { chooseContainer, isSupportedEncoding } from "./audio-container.js";

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

describe("chooseContainer", () => {
  it.each([
    ["WAV", AudioEncoding.WAV],
    ["UNSPECIFIED", AudioEncoding.UNSPECIFIED],
  ])("wraps PCM in WAV for %s, with the 44-byte streaming header", (_name, encoding) => {
    const container = chooseContainer(encoding, pcm22k);
    expect(container.contentType).toBe("audio/wav");
    const prefix = container.streamPrefix;
    expect(prefix.byteLength).toBe(WAV_HEADER_BYTES);
    expect(tag(prefix, 0)).toBe("RIFF");
    expect(u32(prefix, 4)).toBe(0xffff_ffff);
    expect(tag(prefix, 8)).toBe("WAVE");
    expect(tag(prefix, 36)).toBe("data");
    expect(u32(prefix, 40)).toBe(0xffff_ffff);
    expect(u32(prefix, 24)).toBe(22050);
  });

  it("gives a whole clip the exact RIFF and data sizes", () => {
    const container = chooseContainer(AudioEncoding.WAV, pcm48kStereo);
    const prefix = container.clipPrefix(4000);
    expect(prefix.byteLength).toBe(WAV_HEADER_BYTES);
    expect(u32(prefix, 4)).toBe(36 + 4000);
    expect(u32(prefix, 40)).toBe(4000);
    const clip = new Uint8Array(WAV_HEADER_BYTES + 4000);
    clip.set(prefix);
    expect(parseWav(clip)).toEqual({
      sampleRateHz: 48000,
      channels: 2,
      bitsPerSample: 16,
      dataOffset: 44,
      dataBytes: 4000,
    });
    const empty = container.clipPrefix(0);
    expect(u32(empty, 4)).toBe(36);
    expect(u32(empty, 40)).toBe(0);
  });

  it("passes raw PCM with an audio/L16 content type and no header", () => {
    const container = chooseContainer(AudioEncoding.PCM, pcm22k);
    expect(container.contentType).toBe("audio/L16; rate=22050; channels=1");
    expect(container.streamPrefix.byteLength).toBe(0);
    expect(container.clipPrefix(1000).byteLength).toBe(0);
    expect(chooseContainer(AudioEncoding.PCM, pcm48kStereo).contentType).toBe(
      "audio/L16; rate=48000; channels=2",
    );
  });

  it.each([[AudioEncoding.MP3], [AudioEncoding.FLAC], [AudioEncoding.OPUS]])(
    "refuses encoding %d with UNIMPLEMENTED",
    (encoding) => {
      const error = errorOf(() => chooseContainer(encoding, pcm22k));
      expect(error.code).toBe(Code.Unimplemented);
      expect(error.rawMessage).toContain("is not available yet; use WAV or PCM");
    },
  );

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
  it("accepts WAV, PCM and unspecified only", () => {
    expect(isSupportedEncoding(AudioEncoding.UNSPECIFIED)).toBe(true);
    expect(isSupportedEncoding(AudioEncoding.WAV)).toBe(true);
    expect(isSupportedEncoding(AudioEncoding.PCM)).toBe(true);
    expect(isSupportedEncoding(AudioEncoding.MP3)).toBe(false);
    expect(isSupportedEncoding(AudioEncoding.FLAC)).toBe(false);
    expect(isSupportedEncoding(AudioEncoding.OPUS)).toBe(false);
  });
});
