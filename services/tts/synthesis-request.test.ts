import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { ClonePromptRefSchema } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { SynthesizeSpeechRequestSchema } from "../../gen/voxgate/v1/tts_pb.js";
import { checkSynthesisRequest, toBackendRequest } from "./synthesis-request.js";

const limits = { maxTextChars: 20 };

const request = (init: MessageInitShape<typeof SynthesizeSpeechRequestSchema>) =>
  create(SynthesizeSpeechRequestSchema, init);

function errorOf(init: MessageInitShape<typeof SynthesizeSpeechRequestSchema>): ConnectError {
  try {
    toBackendRequest(request(init), limits);
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected the request to be refused");
}

describe("toBackendRequest", () => {
  it("carries every field over and asks the backend for PCM", () => {
    const backend = toBackendRequest(
      request({
        text: "Hello there.",
        voice: "en-us",
        engine: "espeak-ng",
        model: "espeak-ng",
        language: "en",
        speed: 1.5,
        instructions: "calm",
        encoding: AudioEncoding.WAV,
        sampleRateHz: 22050,
        params: { pitch: "40" },
      }),
      limits,
    );
    expect(backend.text).toBe("Hello there.");
    expect(backend.voice?.kind).toEqual({ case: "presetId", value: "en-us" });
    expect(backend.engine).toBe("espeak-ng");
    expect(backend.language).toBe("en");
    expect(backend.speed).toBe(1.5);
    expect(backend.instructions).toBe("calm");
    expect(backend.encoding).toBe(AudioEncoding.PCM);
    expect(backend.sampleRateHz).toBe(22050);
    expect(backend.params).toEqual({ pitch: "40" });
  });

  it("leaves the voice unset when the client names none", () => {
    expect(toBackendRequest(request({ text: "hi" }), limits).voice).toBeUndefined();
  });

  it.each([[""], ["   "], ["\n\t "]])("refuses empty text %j with INVALID_ARGUMENT", (text) => {
    const error = errorOf({ text });
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("text is empty");
  });

  it("accepts text at the limit and refuses one character more, naming the limit and its variable", () => {
    expect(toBackendRequest(request({ text: "x".repeat(20) }), limits).text).toHaveLength(20);
    const error = errorOf({ text: "x".repeat(21) });
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain("text is 21 characters; the limit is 20");
    expect(error.rawMessage).toContain("VOXGATE_MAX_TEXT_CHARS");
  });

  it.each([[0.25], [1], [4], [0]])("accepts speed %d (0 = engine default)", (speed) => {
    expect(toBackendRequest(request({ text: "hi", speed }), limits).speed).toBe(speed);
  });

  it.each([[0.2], [4.5], [-1], [Number.NaN], [Number.POSITIVE_INFINITY]])(
    "refuses speed %d with INVALID_ARGUMENT",
    (speed) => {
      const error = errorOf({ text: "hi", speed });
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(/^speed .* is outside 0\.25\.\.4$/);
    },
  );

  it.each([[7999], [192_001], [-8000]])("refuses sample_rate_hz %d with INVALID_ARGUMENT", (hz) => {
    const error = errorOf({ text: "hi", sampleRateHz: hz });
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe(`sample_rate_hz ${hz} is outside 8000..192000`);
  });

  it("refuses an encoding outside the enum with UNIMPLEMENTED naming the ones there are", () => {
    const error = errorOf({ text: "hi", encoding: 42 as AudioEncoding });
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toBe(
      "encoding 42 is not available: the gateway has no encoder for it; use WAV, PCM, MP3, OPUS, FLAC or AAC",
    );
  });

  it("accepts MP3 and still asks the backend for PCM (the gateway encodes)", () => {
    const backend = toBackendRequest(request({ text: "hi", encoding: AudioEncoding.MP3 }), limits);
    expect(backend.encoding).toBe(AudioEncoding.PCM);
  });

  it("refuses a prompt_id no prompt was resolved for (no prompt store) with UNIMPLEMENTED", () => {
    const error = errorOf({ text: "hi", promptId: "p-123" });
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toContain("prompt store");
  });

  it("checks the text before anything else", () => {
    const error = errorOf({ text: "", encoding: AudioEncoding.FLAC, promptId: "p" });
    expect(error.code).toBe(Code.InvalidArgument);
  });

  it("speaks a resolved clone prompt by digest and model, never passing a URL on", () => {
    const prompt = create(ClonePromptRefSchema, {
      digest: "a".repeat(64),
      sizeBytes: 42n,
      model: { family: "qwen3-tts", size: "1.7b" },
      url: "https://bucket.example/private?sig=x",
    });
    const backend = toBackendRequest(request({ text: "hi", voice: "vc_x" }), limits, prompt);
    expect(backend.voice?.kind.case).toBe("clonePrompt");
    if (backend.voice?.kind.case !== "clonePrompt") return;
    expect(backend.voice.kind.value.digest).toBe("a".repeat(64));
    expect(backend.voice.kind.value.sizeBytes).toBe(42n);
    expect(backend.voice.kind.value.model).toMatchObject({ family: "qwen3-tts", size: "1.7b" });
    expect(backend.voice.kind.value.url).toBe("");
  });

  it("checks limits without looking anything up", () => {
    expect(() => checkSynthesisRequest(request({ text: "x".repeat(21) }), limits)).toThrow(
      /VOXGATE_MAX_TEXT_CHARS/,
    );
    expect(() =>
      checkSynthesisRequest(request({ text: "hi", promptId: "p" }), limits),
    ).not.toThrow();
  });
});
