import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { SynthesizeRequestSchema } from "../../../gen/voxgate/v1/gpu_backend_pb.js";
import { decodeTtsJobOutput, isTtsJobOutputError, toTtsJobInput } from "./tts-job.js";

const output = (pcm: Uint8Array, extra: Record<string, unknown> = {}) => ({
  audio_base64: Buffer.from(pcm).toString("base64"),
  encoding: "pcm_s16le",
  sample_rate_hz: 24_000,
  channels: 1,
  ...extra,
});

function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (err) {
    expect(isTtsJobOutputError(err)).toBe(true);
    return err as Error;
  }
  throw new Error("should have thrown");
}

describe("toTtsJobInput", () => {
  it("maps a preset voice and defaults speed to 1", () => {
    const input = toTtsJobInput(
      create(SynthesizeRequestSchema, {
        text: "Hi.",
        voice: { kind: { case: "presetId", value: "en-us" } },
        language: "en",
        params: { top_p: "0.9" },
      }),
    );
    expect(input).toEqual({
      text: "Hi.",
      voice: "en-us",
      speed: 1,
      language: "en",
      engine: "",
      instructions: "",
      sample_rate_hz: 0,
      encoding: "pcm_s16le",
      params: { top_p: "0.9" },
    });
  });

  it("passes a clone prompt as its signed URL, digest and model", () => {
    const input = toTtsJobInput(
      create(SynthesizeRequestSchema, {
        text: "Hi.",
        speed: 1.25,
        voice: {
          kind: {
            case: "clonePrompt",
            value: {
              digest: "ab".repeat(32),
              sizeBytes: 10n,
              url: "https://signed.example/p",
              model: { family: "qwen3-tts", size: "1.7b" },
            },
          },
        },
      }),
    );
    expect(input.voice).toBe("");
    expect(input.speed).toBe(1.25);
    expect(input.clone_prompt).toEqual({
      url: "https://signed.example/p",
      digest: "ab".repeat(32),
      size_bytes: 10,
      model: { family: "qwen3-tts", size: "1.7b" },
    });
  });
});

describe("decodeTtsJobOutput", () => {
  it("decodes PCM and its format", () => {
    const pcm = new Uint8Array([1, 2, 3, 4]);
    const decoded = decodeTtsJobOutput(output(pcm, { engine: "qwen3-tts" }), 1024);
    expect(Buffer.from(decoded.pcm).equals(Buffer.from(pcm))).toBe(true);
    expect(decoded).toMatchObject({ sampleRateHz: 24_000, channels: 1, engine: "qwen3-tts" });
  });

  it("refuses audio over the limit before decoding it", () => {
    expect(errorOf(() => decodeTtsJobOutput(output(new Uint8Array(4096)), 1024)).message).toContain(
      "over the limit of 1024 (maxAudioBytes)",
    );
  });

  it("refuses a partial frame, bad base64, another encoding and a missing field", () => {
    expect(errorOf(() => decodeTtsJobOutput(output(new Uint8Array(3)), 1024)).message).toContain(
      "not a whole number",
    );
    expect(
      errorOf(() =>
        decodeTtsJobOutput({ ...output(new Uint8Array(2)), audio_base64: "!!!!" }, 1024),
      ).message,
    ).toContain("not valid base64");
    expect(
      errorOf(() => decodeTtsJobOutput(output(new Uint8Array(2), { encoding: "mp3" }), 1024))
        .message,
    ).toContain('encoding must be "pcm_s16le"');
    expect(errorOf(() => decodeTtsJobOutput({ encoding: "pcm_s16le" }, 1024)).message).toContain(
      "audio_base64",
    );
    expect(errorOf(() => decodeTtsJobOutput(null, 1024)).message).toContain("job contract");
  });
});
