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
  PcmFormat,
  TtsEngine,
} from "../tts-engine.js";
import {
  connectModelServer,
  createEngineCalls,
  type ModelServerConnectionOptions,
} from "./model-server-base.js";
import { readPcmStream } from "./pcm-stream.js";
import { OPENAI_WIRE } from "./wire-fields.js";

/** Engine id of {@link createOpenAiSpeechEngine}. */
export const OPENAI_HTTP_ENGINE_ID = "openai-http";

/** Options of {@link createOpenAiSpeechEngine}. */
export interface OpenAiSpeechEngineOptions extends ModelServerConnectionOptions {
  /**
   * Base URL of the server, e.g. `http://127.0.0.1:8880`; a trailing `/v1` is dropped, so the
   * URL OpenAI SDKs take works too.
   */
  baseUrl: string;
  /** `model` of every request. @default "tts-1" */
  model?: string;
  /**
   * `response_format` asked for: `wav` (the header gives the rate, whatever `sampleRateHz` says)
   * or `pcm` (raw 16-bit mono, which says nothing of its rate: `sampleRateHz` is then required).
   * @default "wav"
   */
  responseFormat?: "pcm" | "wav";
  /** Voices to offer when the server has no voice list (`GET /v1/audio/voices`). */
  voices?: readonly string[];
  /** Logger; the engine logs through `log.child({ component: "openai-speech-engine" })`. */
  log?: Logger;
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
  const responseFormat = options.responseFormat ?? "wav";
  // Raw PCM carries no rate: guessing one would play the audio at the wrong speed.
  const pcmRateHz = options.sampleRateHz || undefined;
  if (responseFormat === "pcm" && pcmRateHz === undefined) {
    throw new RangeError(
      "response format pcm carries no sample rate: set VOXGATE_AGENT_ENGINE_SAMPLE_RATE_HZ to the server's rate, or use wav",
    );
  }
  const { client, sampleRateHz, voices, voiceIds } = await connectModelServer(
    // OpenAI SDKs are given `…/v1`; our paths already start with it.
    {
      ...options,
      baseUrl: options.baseUrl.replace(/\/v1\/*$/, ""),
      sampleRateHz: pcmRateHz ?? 24_000,
    },
    { engineId, component: "openai-speech-engine", wire: OPENAI_WIRE, readyLog: { model } },
  );

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
  const calls = createEngineCalls(engineId);

  async function* synthesize(
    request: EngineSynthesisRequest,
    signal: AbortSignal,
  ): AsyncIterable<EngineAudioChunk> {
    calls.assertOpen();
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
    const context = { engineId, voiceId: voice, knownVoiceIds: voiceIds };
    yield* calls.stream(signal, context, async function* (inner) {
      const response = await client.request({
        method: "POST",
        path: OPENAI_WIRE.speechPath,
        accept: responseFormat === "wav" ? "audio/wav" : "audio/pcm, application/octet-stream",
        signal: inner,
        json: {
          [fields.model]: model,
          [fields.input]: request.text,
          [fields.voice]: voice,
          [fields.responseFormat]: responseFormat,
          [fields.speed]: speed,
          ...(request.instructions ? { [fields.instructions]: request.instructions } : {}),
        },
      });
      let format: PcmFormat | undefined;
      const pcmOptions = {
        engineId,
        format: pcmRateHz === undefined ? undefined : info.format,
        // A WAV says what it is: its rate wins over any setting.
        adoptWavFormat: true,
        onFormat: (f: PcmFormat) => {
          format = f;
        },
      };
      for await (const pcm of readPcmStream(response.body(), pcmOptions)) {
        yield { pcm, ...(format ? { format } : {}) };
      }
    });
  }

  return {
    info,
    synthesize,
    async close() {
      calls.close();
    },
  };
}
