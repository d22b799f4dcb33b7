/**
 * An engine that forwards to an OpenAI-compatible speech server on the GPU host
 * (`POST /v1/audio/speech`), so an existing GPU setup (OpenAI itself, Kokoro-FastAPI, vLLM,
 * openedai-speech, …) plugs into an agent unchanged.
 */
import type { Logger } from "pino";
import { EngineUnavailableError, UnknownVoiceError } from "../engine-errors.js";
import type {
  EngineAudioChunk,
  EngineInfo,
  EngineSynthesisRequest,
  TtsEngine,
} from "../tts-engine.js";
import { createModelServerClient } from "./model-server-client.js";
import { toEngineError } from "./model-server-errors.js";
import { readPcmStream } from "./pcm-stream.js";
import { discoverVoices } from "./voice-discovery.js";
import { OPENAI_WIRE } from "./wire-fields.js";

/** Engine id of {@link createOpenAiSpeechEngine}. */
export const OPENAI_HTTP_ENGINE_ID = "openai-http";

/** Options of {@link createOpenAiSpeechEngine}. */
export interface OpenAiSpeechEngineOptions {
  /**
   * Base URL of the server, e.g. `http://127.0.0.1:8880`; a trailing `/v1` is dropped, so the
   * URL OpenAI SDKs take works too.
   */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`; never logged. */
  apiKey?: string;
  /** `model` of every request. @default "tts-1" */
  model?: string;
  /**
   * `response_format` asked for: `pcm` (raw 16-bit mono, 24 kHz at OpenAI) or `wav` (its header
   * is checked against `sampleRateHz`).
   * @default "pcm"
   */
  responseFormat?: "pcm" | "wav";
  /** Sample rate of the server's audio, in Hz. @default 24000 */
  sampleRateHz?: number;
  /** Voices to offer when the server has no voice list (`GET /v1/audio/voices`). */
  voices?: readonly string[];
  /** Longest wait for an answer to start and between two pieces of it, in ms. @default 120000 */
  timeoutMs?: number;
  /** Longest wait for the voice list at start, in ms. @default 10000 */
  discoveryTimeoutMs?: number;
  /** Largest answer of one request, in bytes. @default 67108864 */
  maxResponseBytes?: number;
  /** Logger; the engine logs through `log.child({ component: "openai-speech-engine" })`. */
  log?: Logger;
  /** The fetch to use (tests). @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * Creates the engine and reads the server's voices: `GET /v1/audio/voices` if the server offers
 * it, else `voices`, else OpenAI's own voice names. The server does not have to be up yet.
 *
 * `synthesize` posts `{model, input, voice, response_format, speed, instructions}` and yields the
 * audio as the body arrives (WAV header removed), so the first bytes leave before the server has
 * finished. An empty `voiceId` means the first voice; one the engine does not offer throws
 * `UnknownVoiceError` without a request. `speed` is clamped to 0.25..4. Aborting `signal` closes
 * the HTTP request. HTTP failures become engine errors (see `toEngineError`). The engine cannot
 * clone voices. Throws `RangeError` for invalid options.
 */
export async function createOpenAiSpeechEngine(
  options: OpenAiSpeechEngineOptions,
): Promise<TtsEngine> {
  const engineId = OPENAI_HTTP_ENGINE_ID;
  const model = options.model || "tts-1";
  const responseFormat = options.responseFormat ?? "pcm";
  const sampleRateHz = options.sampleRateHz ?? 24_000;
  if (!Number.isInteger(sampleRateHz) || sampleRateHz < 8000 || sampleRateHz > 192_000) {
    throw new RangeError(`sampleRateHz must be an integer in 8000..192000, got ${sampleRateHz}`);
  }
  const log = options.log?.child({ component: "openai-speech-engine" });
  const client = createModelServerClient({
    engineId,
    // OpenAI SDKs are given `…/v1`; our paths already start with it.
    baseUrl: options.baseUrl.replace(/\/v1\/*$/, ""),
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.maxResponseBytes === undefined
      ? {}
      : { maxResponseBytes: options.maxResponseBytes }),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const { voices, source } = await discoverVoices({
    client,
    path: OPENAI_WIRE.voicesPath,
    listFields: OPENAI_WIRE.voicesList,
    idFields: OPENAI_WIRE.voiceId,
    configured: options.voices ?? [],
    builtIn: OPENAI_WIRE.builtInVoices,
    timeoutMs: options.discoveryTimeoutMs ?? 10_000,
    log,
  });
  const voiceIds = voices.map((v) => v.id);
  log?.info({ url: client.baseUrl, model, voices: voiceIds.length, source }, "engine ready");

  const info: EngineInfo = {
    id: engineId,
    version: "1",
    modelFamily: model,
    modelSize: "",
    format: { sampleRateHz, channels: 1 },
    voices,
    supportsSpeed: true,
    supportsCloning: false,
  };
  const running = new Set<AbortController>();
  let closed = false;

  async function* synthesize(
    request: EngineSynthesisRequest,
    signal: AbortSignal,
  ): AsyncIterable<EngineAudioChunk> {
    if (closed) throw new EngineUnavailableError(engineId, "engine is closed");
    if (request.clonePrompt) {
      throw new EngineUnavailableError(engineId, "openai-http engines cannot speak clone prompts");
    }
    const voice = request.voiceId || (voiceIds[0] as string);
    if (!voiceIds.includes(voice)) {
      throw new UnknownVoiceError(engineId, voice, voiceIds.slice(0, 8));
    }
    const fields = OPENAI_WIRE.request;
    const speed = Math.min(
      OPENAI_WIRE.maxSpeed,
      Math.max(OPENAI_WIRE.minSpeed, request.speed || 1),
    );
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    running.add(controller);
    try {
      const response = await client.request({
        method: "POST",
        path: OPENAI_WIRE.speechPath,
        accept: responseFormat === "wav" ? "audio/wav" : "audio/pcm, application/octet-stream",
        signal: controller.signal,
        json: {
          [fields.model]: model,
          [fields.input]: request.text,
          [fields.voice]: voice,
          [fields.responseFormat]: responseFormat,
          [fields.speed]: speed,
          ...(request.instructions ? { [fields.instructions]: request.instructions } : {}),
        },
      });
      for await (const pcm of readPcmStream(response.body(), { engineId, format: info.format })) {
        yield { pcm };
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw toEngineError(err, { engineId, voiceId: voice, knownVoiceIds: voiceIds });
    } finally {
      signal.removeEventListener("abort", onAbort);
      running.delete(controller);
    }
  }

  return {
    info,
    synthesize,
    async close() {
      closed = true;
      for (const controller of running) {
        controller.abort(new EngineUnavailableError(engineId, "engine is closed"));
      }
    },
  };
}
