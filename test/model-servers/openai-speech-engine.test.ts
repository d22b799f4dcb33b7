/**
 * The openai-http engine against a real fake OpenAI-compatible server on 127.0.0.1: voices,
 * exact PCM for both response formats, streaming, cancellation, limits and error mapping.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import {
  isEngineInputError,
  isEngineOverloadedError,
  isEngineUnavailableError,
  isSynthesisFailedError,
  isUnknownVoiceError,
} from "../../services/engines/engine-errors.js";
import {
  createOpenAiSpeechEngine,
  type OpenAiSpeechEngineOptions,
} from "../../services/engines/model-server/index.js";
import type { TtsEngine } from "../../services/engines/tts-engine.js";
import { closeAfterEach, collectPcm, failureOf, speechRequest } from "./engine-test-support.js";
import { deferred, type FakeOpenAiSpeechServer, startFakeOpenAiSpeechServer } from "./index.js";

const API_KEY = "sk-test-0123456789abcdef";
const opened = closeAfterEach();

async function setup(
  options: Partial<OpenAiSpeechEngineOptions> = {},
  fakeOptions: Parameters<typeof startFakeOpenAiSpeechServer>[0] = {},
): Promise<{ fake: FakeOpenAiSpeechServer; engine: TtsEngine }> {
  const fake = await startFakeOpenAiSpeechServer({ apiKey: API_KEY, ...fakeOptions });
  opened.push(fake);
  // Raw PCM at a known rate unless a test says otherwise (pcm needs the rate set).
  const engine = await createOpenAiSpeechEngine({
    baseUrl: fake.url,
    apiKey: API_KEY,
    responseFormat: "pcm",
    sampleRateHz: 24_000,
    ...options,
  });
  opened.push(engine);
  return { fake, engine };
}

describe("openai-http engine", () => {
  it("lists the server's voices and describes itself", async () => {
    const { engine } = await setup({ model: "kokoro", sampleRateHz: 24_000 });
    expect(engine.info.voices.map((v) => v.id)).toEqual(["alloy", "nova", "onyx"]);
    expect(engine.info).toMatchObject({
      id: "openai-http",
      modelFamily: "kokoro",
      format: { sampleRateHz: 24_000, channels: 1 },
      supportsCloning: false,
    });
  });

  it("falls back to the configured voices, then to OpenAI's, when the server lists none", async () => {
    const { engine } = await setup(
      { voices: ["af_bella", "am_adam"] },
      { knobs: { voices: undefined } },
    );
    expect(engine.info.voices.map((v) => v.id)).toEqual(["af_bella", "am_adam"]);
    const { engine: bare } = await setup({}, { knobs: { voices: undefined } });
    expect(bare.info.voices.map((v) => v.id)).toContain("alloy");
    expect(bare.info.voices.map((v) => v.id)).toContain("shimmer");
  });

  it("sends OpenAI's request fields with the key as a bearer token and returns the exact PCM", async () => {
    const { fake, engine } = await setup({ model: "tts-1-hd" });
    const pcm = await collectPcm(
      engine,
      speechRequest("Hello from the GPU", { voiceId: "nova", speed: 9, instructions: "calm" }),
    );
    expect(pcm.equals(fake.expectedPcm("Hello from the GPU", "nova"))).toBe(true);
    const [sent] = fake.speechRequests();
    expect(sent?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent?.body).toEqual({
      model: "tts-1-hd",
      input: "Hello from the GPU",
      voice: "nova",
      response_format: "pcm",
      speed: 4,
      instructions: "calm",
    });
  });

  it("strips a WAV header split over tiny pieces and keeps whole frames", async () => {
    const { fake, engine } = await setup({ responseFormat: "wav" }, { knobs: { pieceBytes: 7 } });
    const pcm = await collectPcm(engine, speechRequest("Odd pieces", { voiceId: "onyx" }));
    expect(pcm.equals(fake.expectedPcm("Odd pieces", "onyx"))).toBe(true);
    expect(fake.speechRequests()[0]?.body).toMatchObject({ response_format: "wav" });
  });

  it("streams: the first chunk arrives while the server still holds the rest", async () => {
    const gate = deferred();
    const { fake, engine } = await setup({}, { knobs: { pieceBytes: 1000, gate: gate.promise } });
    const expected = fake.expectedPcm("A sentence that takes a while.", "alloy");
    const iterator = engine
      .synthesize(speechRequest("A sentence that takes a while."), new AbortController().signal)
      [Symbol.asyncIterator]();
    const first = await iterator.next();
    const sent = fake.speechRequests()[0];
    expect(first.done).toBe(false);
    expect(sent?.completed).toBe(false);
    expect(sent?.bytesSent).toBe(1000);
    expect(expected.byteLength).toBeGreaterThan(1000);
    gate.resolve();
    const chunks = [first.value?.pcm as Uint8Array];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      chunks.push(next.value.pcm);
    }
    expect(Buffer.concat(chunks).equals(expected)).toBe(true);
    await sent?.closed;
    expect(sent?.completed).toBe(true);
  });

  it("closes the upstream request when the call is aborted", async () => {
    const gate = deferred();
    const { fake, engine } = await setup({}, { knobs: { pieceBytes: 1000, gate: gate.promise } });
    const controller = new AbortController();
    const reason = new Error("caller went away");
    const chunks = engine.synthesize(speechRequest("Long text to be cut off."), controller.signal);
    const failure = failureOf(
      (async () => {
        for await (const _ of chunks) controller.abort(reason);
      })(),
    );
    expect(await failure).toBe(reason);
    const sent = fake.speechRequests()[0];
    await sent?.closed;
    expect(sent?.closedEarly).toBe(true);
    expect(sent?.completed).toBe(false);
    gate.resolve();
  });

  it("refuses an unknown voice without a request", async () => {
    const { fake, engine } = await setup();
    const err = await failureOf(
      collectPcm(engine, speechRequest("Hi", { voiceId: "../../etc/passwd" })),
    );
    expect(isUnknownVoiceError(err)).toBe(true);
    expect(fake.speechRequests()).toHaveLength(0);
  });

  it("maps the server's HTTP errors to engine errors with its message", async () => {
    const { fake, engine } = await setup();
    fake.knobs.failNext.push(
      { status: 404, body: { error: { message: "voice 'nova' is not loaded" } } },
      { status: 400, body: { error: { message: "input is too long for this model" } } },
      { status: 422, body: { detail: [{ msg: "speed out of range" }] } },
      { status: 429, body: { error: { message: "queue is full" } } },
      { status: 503, body: "model is loading" },
      { status: 500, body: { error: "CUDA out of memory" } },
    );
    const voice = await failureOf(collectPcm(engine, speechRequest("Hi", { voiceId: "nova" })));
    expect(isUnknownVoiceError(voice)).toBe(true);
    expect(voice.message).toContain("voice 'nova' is not loaded");
    const input = await failureOf(collectPcm(engine, speechRequest("Hi")));
    expect(isEngineInputError(input)).toBe(true);
    expect(input.message).toContain("input is too long for this model");
    const unprocessable = await failureOf(collectPcm(engine, speechRequest("Hi")));
    expect(isEngineInputError(unprocessable)).toBe(true);
    expect(unprocessable.message).toContain("speed out of range");
    const overloaded = await failureOf(collectPcm(engine, speechRequest("Hi")));
    expect(isEngineOverloadedError(overloaded)).toBe(true);
    expect(overloaded.message).toContain("queue is full");
    const unavailable = await failureOf(collectPcm(engine, speechRequest("Hi")));
    expect(isEngineUnavailableError(unavailable)).toBe(true);
    expect(unavailable.message).toContain("model is loading");
    const failed = await failureOf(collectPcm(engine, speechRequest("Hi")));
    expect(isSynthesisFailedError(failed)).toBe(true);
    expect(failed.message).toContain("CUDA out of memory");
  });

  it("names the key setting on 401 and never repeats the key", async () => {
    const fake = await startFakeOpenAiSpeechServer({ apiKey: API_KEY });
    opened.push(fake);
    const engine = await createOpenAiSpeechEngine({ baseUrl: fake.url, apiKey: "sk-wrong-key" });
    opened.push(engine);
    const err = await failureOf(collectPcm(engine, speechRequest("Hi")));
    expect(isEngineUnavailableError(err)).toBe(true);
    expect(err.message).toContain("VOXGATE_AGENT_ENGINE_API_KEY");
    expect(err.message).not.toContain("sk-wrong-key");
    fake.knobs.failNext.push({ status: 400, body: { error: { message: `bad key ${API_KEY}` } } });
    const { engine: good } = {
      engine: await createOpenAiSpeechEngine({ baseUrl: fake.url, apiKey: API_KEY }),
    };
    opened.push(good);
    const echoed = await failureOf(collectPcm(good, speechRequest("Hi")));
    expect(echoed.message).toContain("[redacted]");
    expect(echoed.message).not.toContain(API_KEY);
  });

  it("reports an unreachable server as unavailable, naming the URL setting", async () => {
    const probe = createServer();
    probe.listen(0, "127.0.0.1");
    await once(probe, "listening");
    const { port } = probe.address() as AddressInfo;
    probe.close();
    await once(probe, "close");
    const engine = await createOpenAiSpeechEngine({
      baseUrl: `http://127.0.0.1:${port}/v1`,
      discoveryTimeoutMs: 2000,
    });
    opened.push(engine);
    // Discovery failed, so the engine offers OpenAI's voices and still starts.
    expect(engine.info.voices.map((v) => v.id)).toContain("alloy");
    const err = await failureOf(collectPcm(engine, speechRequest("Hi")));
    expect(isEngineUnavailableError(err)).toBe(true);
    expect(err.message).toContain("ECONNREFUSED");
    expect(err.message).toContain("VOXGATE_AGENT_ENGINE_URL");
  });

  it("stops reading past max response bytes and names the limit", async () => {
    const { fake, engine } = await setup(
      { maxResponseBytes: 3000 },
      { knobs: { pieceBytes: 1000 } },
    );
    const err = await failureOf(
      collectPcm(engine, speechRequest("This answer is longer than the limit")),
    );
    expect(isSynthesisFailedError(err)).toBe(true);
    expect(err.message).toContain("3000 bytes");
    expect(err.message).toContain("VOXGATE_AGENT_ENGINE_MAX_RESPONSE_BYTES");
    expect(fake.speechRequests()).toHaveLength(1);
  });

  it("takes the sample rate from the server's WAV header, not from the setting (the rate bug)", async () => {
    // The issue: a server answering 22.05 kHz played 9 % fast when stamped with 24 kHz.
    const { fake, engine } = await setup(
      { responseFormat: "wav", sampleRateHz: 24_000 },
      { knobs: { wavSampleRateHz: 22_050 } },
    );
    const chunks = [];
    for await (const chunk of engine.synthesize(
      speechRequest("Hi there"),
      new AbortController().signal,
    )) {
      chunks.push(chunk);
    }
    expect(chunks[0]?.format).toEqual({ sampleRateHz: 22_050, channels: 1 });
    expect(
      Buffer.concat(chunks.map((c) => c.pcm)).equals(
        Buffer.from(fake.expectedPcm("Hi there", "alloy")),
      ),
    ).toBe(true);
  });

  it("refuses raw PCM of unknown rate at start, naming the setting", async () => {
    const fake = await startFakeOpenAiSpeechServer({ apiKey: API_KEY });
    opened.push(fake);
    const err = await failureOf(
      createOpenAiSpeechEngine({ baseUrl: fake.url, apiKey: API_KEY, responseFormat: "pcm" }),
    );
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toContain("VOXGATE_AGENT_ENGINE_SAMPLE_RATE_HZ");
    expect(fake.speechRequests()).toHaveLength(0);
  });

  it("does not follow a redirect to another host, so the key stays home", async () => {
    const elsewhere = await startFakeOpenAiSpeechServer();
    opened.push(elsewhere);
    const { fake, engine } = await setup();
    fake.knobs.redirectTo = `${elsewhere.url.replace("127.0.0.1", "localhost")}/v1/audio/speech`;
    const err = await failureOf(collectPcm(engine, speechRequest("Hi")));
    expect(isEngineUnavailableError(err)).toBe(true);
    expect(err.message).toContain("redirected");
    expect(elsewhere.requests).toHaveLength(0);
  });

  it("gives up on a silent server after the timeout, naming the setting", async () => {
    const gate = deferred();
    const { fake, engine } = await setup(
      { timeoutMs: 300 },
      { knobs: { pieceBytes: 1000, gate: gate.promise } },
    );
    const err = await failureOf(
      collectPcm(engine, speechRequest("The server stops talking here.")),
    );
    expect(isEngineUnavailableError(err)).toBe(true);
    expect(err.message).toContain("VOXGATE_AGENT_ENGINE_TIMEOUT_MS");
    const sent = fake.speechRequests()[0];
    await sent?.closed;
    expect(sent?.closedEarly).toBe(true);
    gate.resolve();
  });

  it("refuses calls once closed", async () => {
    const { fake, engine } = await setup();
    await engine.close();
    const err = await failureOf(collectPcm(engine, speechRequest("Hi")));
    expect(isEngineUnavailableError(err)).toBe(true);
    expect(fake.speechRequests()).toHaveLength(0);
  });
});
