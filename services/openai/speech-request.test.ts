import { describe, expect, it } from "vitest";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { isOpenAiError, type OpenAiError } from "./openai-error.js";
import { parseSpeechRequest, resolveModel, type SpeechModelCatalog } from "./speech-request.js";

const catalog: SpeechModelCatalog = {
  engines: new Set(["espeak-ng", "qwen-engine"]),
  families: new Set(["espeak-ng", "qwen3-tts"]),
};

function refusal(body: unknown): OpenAiError {
  try {
    parseSpeechRequest(body, catalog);
  } catch (err) {
    expect(isOpenAiError(err)).toBe(true);
    return err as OpenAiError;
  }
  throw new Error("expected the body to be refused");
}

describe("parseSpeechRequest", () => {
  it("routes a model alias by its criteria, before OpenAI names and engine ids", () => {
    const modelAliases = {
      "tts-1": { engine: "espeak-ng" },
      "tts-1-hd": { model: "qwen3-tts" },
      "espeak-ng": { engine: "qwen-engine" },
    };
    const routed = (model: string) =>
      parseSpeechRequest({ model, input: "x" }, catalog, { modelAliases }).request;
    expect(routed("tts-1")).toMatchObject({ engine: "espeak-ng" });
    expect(routed("tts-1")).not.toHaveProperty("model");
    expect(routed("tts-1-hd")).toMatchObject({ model: "qwen3-tts" });
    expect(routed("tts-1-hd")).not.toHaveProperty("engine");
    expect(routed("espeak-ng")).toMatchObject({ engine: "qwen-engine" });
    // Not aliased: OpenAI's name still means any engine.
    expect(routed("gpt-4o-mini-tts")).not.toHaveProperty("engine");
  });

  it("asks for word timings with SSE", () => {
    const call = parseSpeechRequest(
      { input: "x", stream_format: "sse", word_timings: true },
      catalog,
    );
    expect(call.request.wordTimings).toBe(true);
    expect(parseSpeechRequest({ input: "x" }, catalog).request).not.toHaveProperty("wordTimings");
  });

  it("honours stream: false (one whole file) and Kokoro's download_format and lang_code", () => {
    const whole = parseSpeechRequest(
      { input: "x", stream: false, response_format: "mp3", download_format: "wav", lang_code: "b" },
      catalog,
    );
    expect(whole.whole).toBe(true);
    expect(whole.responseFormat).toBe("wav");
    expect(whole.request.encoding).toBe(AudioEncoding.WAV);
    expect(whole.request.language).toBe("en-gb");
    // Streamed, download_format names a download link voxgate does not make: response_format wins.
    const streamed = parseSpeechRequest(
      { input: "x", stream: true, response_format: "pcm", download_format: "wav" },
      catalog,
    );
    expect(streamed.whole).toBe(false);
    expect(streamed.responseFormat).toBe("pcm");
  });

  it("maps a full OpenAI request onto TtsService", () => {
    const call = parseSpeechRequest(
      {
        model: "qwen3-tts",
        input: "Hello.",
        voice: "en-us",
        response_format: "wav",
        speed: 1.25,
        instructions: "Cheerful.",
        stream_format: "sse",
        extra_field: true,
      },
      catalog,
    );
    expect(call).toEqual({
      request: {
        text: "Hello.",
        voice: "en-us",
        model: "qwen3-tts",
        speed: 1.25,
        instructions: "Cheerful.",
        encoding: AudioEncoding.WAV,
      },
      responseFormat: "wav",
      streamFormat: "sse",
      whole: false,
    });
  });

  it("defaults like OpenAI: mp3, raw audio; and leaves speed to the engine", () => {
    const call = parseSpeechRequest({ model: "tts-1", input: "Hi", voice: "alloy" }, catalog);
    expect(call.responseFormat).toBe("mp3");
    expect(call.request.encoding).toBe(AudioEncoding.MP3);
    expect(call.streamFormat).toBe("audio");
    expect(call.request).not.toHaveProperty("speed");
    expect(call.request).not.toHaveProperty("engine");
    expect(call.request).not.toHaveProperty("model");
    expect(call.request.voice).toBe("alloy");
    expect(call.whole).toBe(false);
  });

  it.each([
    ["pcm", AudioEncoding.PCM, 24000],
    ["wav", AudioEncoding.WAV, 0],
    ["mp3", AudioEncoding.MP3, 0],
    ["opus", AudioEncoding.OPUS, 0],
    ["aac", AudioEncoding.AAC, 0],
    ["flac", AudioEncoding.FLAC, 0],
  ])(
    "maps response_format %s (pcm at OpenAI's 24 kHz, the others at the engine's rate)",
    (format, encoding, rate) => {
      const call = parseSpeechRequest({ input: "x", response_format: format }, catalog);
      expect(call.request.encoding).toBe(encoding);
      expect(call.request.sampleRateHz ?? 0).toBe(rate);
    },
  );

  it("takes sample_rate_hz, or sample_rate, for any format", () => {
    const body = { input: "x", response_format: "flac", sample_rate_hz: 16000 };
    expect(parseSpeechRequest(body, catalog).request.sampleRateHz).toBe(16000);
    const pcm = { input: "x", response_format: "pcm", sample_rate: 48000 };
    expect(parseSpeechRequest(pcm, catalog).request.sampleRateHz).toBe(48000);
  });

  it("takes a voice object's id", () => {
    expect(parseSpeechRequest({ input: "x", voice: { id: "v_123" } }, catalog)).toMatchObject({
      request: { voice: "v_123" },
    });
    expect(parseSpeechRequest({ input: "x" }, catalog).request.voice).toBe("");
  });

  it("passes the text unchecked: TtsService owns the empty and length checks", () => {
    expect(parseSpeechRequest({ input: "" }, catalog).request.text).toBe("");
    expect(parseSpeechRequest({ input: "y".repeat(100_000) }, catalog).request.text).toHaveLength(
      100_000,
    );
  });

  it.each([
    [null, null, "the request body must be a JSON object"],
    [[1], null, "the request body must be a JSON object"],
    ["text", null, "the request body must be a JSON object"],
    [{}, "input", "input is required: the text to speak"],
    [{ input: 5 }, "input", "input must be a string"],
    [{ input: "x", model: 4 }, "model", "model must be a string"],
    [{ input: "x", stream: "no" }, "stream", 'stream must be true or false, got "no"'],
    [
      { input: "x", word_timings: true },
      "word_timings",
      'word_timings come as events: ask for them with stream_format "sse"',
    ],
    [
      { input: "x", stream_format: "sse", word_timings: "yes" },
      "word_timings",
      'word_timings must be true or false, got "yes"',
    ],
    [
      { input: "x", stream: false, stream_format: "sse" },
      "stream",
      'stream: false asks for one whole file, stream_format "sse" for events; choose one',
    ],
    [
      { input: "x", stream: false, download_format: "ogg" },
      "download_format",
      'download_format "ogg" is not one of mp3, opus, aac, flac, wav, pcm',
    ],
    [
      { input: "x", lang_code: "q" },
      "lang_code",
      'lang_code "q" is not one of a, b, e, f, h, i, j, p, z',
    ],
    [
      { input: "x", voice: 7 },
      "voice",
      'voice must be a voice name or an object { "id": "<voice id>" }',
    ],
    [
      { input: "x", voice: { name: "a" } },
      "voice",
      'voice must be a voice name or an object { "id": "<voice id>" }',
    ],
    [
      { input: "x", response_format: "ogg" },
      "response_format",
      'response_format "ogg" is not one of mp3, opus, aac, flac, wav, pcm',
    ],
    [
      { input: "x", response_format: "toString" },
      "response_format",
      'response_format "toString" is not one of mp3, opus, aac, flac, wav, pcm',
    ],
    [
      { input: "x", sample_rate_hz: 7999 },
      "sample_rate_hz",
      "sample_rate_hz must be an integer from 8000 to 192000, got 7999",
    ],
    [
      { input: "x", sample_rate: "24k" },
      "sample_rate",
      'sample_rate_hz must be an integer from 8000 to 192000, got "24k"',
    ],
    [{ input: "x", speed: 0.2 }, "speed", "speed must be a number from 0.25 to 4, got 0.2"],
    [{ input: "x", speed: 4.01 }, "speed", "speed must be a number from 0.25 to 4, got 4.01"],
    [{ input: "x", speed: "fast" }, "speed", 'speed must be a number from 0.25 to 4, got "fast"'],
    [{ input: "x", instructions: ["a"] }, "instructions", "instructions must be a string"],
    [
      { input: "x", stream_format: "ws" },
      "stream_format",
      'stream_format "ws" is not one of audio, sse',
    ],
  ])("refuses %j with 400 naming %s", (body, param, message) => {
    const error = refusal(body);
    expect(error.status).toBe(400);
    expect(error.param).toBe(param);
    expect(error.message).toBe(message);
    expect(error.toJSON()).toEqual({
      error: { message, type: "invalid_request_error", param, code: "invalid_argument" },
    });
  });

  it.each([[0.25], [1], [4]])("accepts speed %d", (speed) => {
    expect(parseSpeechRequest({ input: "x", speed }, catalog).request.speed).toBe(speed);
  });
});

describe("resolveModel", () => {
  it.each([[""], ["tts-1"], ["tts-1-hd"], ["gpt-4o-mini-tts"]])(
    "lets %j use any engine",
    (model) => {
      expect(resolveModel(model, catalog)).toEqual({});
    },
  );

  it("restricts to an engine id first, then to a model family", () => {
    expect(resolveModel("espeak-ng", catalog)).toEqual({ engine: "espeak-ng" });
    expect(resolveModel("qwen-engine", catalog)).toEqual({ engine: "qwen-engine" });
    expect(resolveModel("qwen3-tts", catalog)).toEqual({ model: "qwen3-tts" });
  });

  it("answers an unknown model 404 model_not_found, listing the known ones", () => {
    let error: unknown;
    try {
      resolveModel("whisper-1", catalog);
    } catch (err) {
      error = err;
    }
    expect(isOpenAiError(error)).toBe(true);
    expect((error as OpenAiError).status).toBe(404);
    expect((error as OpenAiError).toJSON().error).toEqual({
      message:
        'model "whisper-1" is not offered by any connected backend; use one of: tts-1, tts-1-hd, ' +
        "gpt-4o-mini-tts, gpt-4o-mini-tts-2025-12-15, espeak-ng, qwen-engine, qwen3-tts",
      type: "invalid_request_error",
      param: "model",
      code: "model_not_found",
    });
  });
});
