/**
 * Builds a model-server engine from the agent's settings: the one entry the engine factory calls
 * for `--engine openai-http` and `--engine qwen3-http`.
 */
import type { Logger } from "pino";
import { EngineUnavailableError } from "../engine-errors.js";
import type { TtsEngine } from "../tts-engine.js";
import { MODEL_SERVER_SETTING_ENV } from "./model-server-errors.js";

/** The model-server kinds an agent can host. */
export type ModelServerKind = "openai-http" | "qwen3-http";

/** Settings of a model-server engine, as the agent resolved them. */
export interface ModelServerSettings {
  /** Base URL of the model server; required. */
  url: string;
  /** API key sent as a bearer token; empty for none. */
  apiKey: string;
  /** `model` sent to OpenAI-compatible servers; empty = `tts-1`. */
  model: string;
  /** Model size reported for Qwen3-TTS (clone prompts are tied to it); empty = `1.7b`. */
  modelSize: string;
  /** Voices offered when the server lists none; empty = the API's well-known voices. */
  voices: readonly string[];
  /** `response_format` asked of OpenAI-compatible servers. */
  responseFormat: "pcm" | "wav";
  /** Sample rate of the server's raw PCM, in Hz; 0 = unknown (WAV answers give their own). */
  sampleRateHz: number;
  /** Longest wait for an answer to start and between two pieces of it, in ms. */
  timeoutMs: number;
  /** Longest wait for the voice list at start, in ms. */
  discoveryTimeoutMs: number;
  /** Largest answer of one request, in bytes. */
  maxResponseBytes: number;
  /** The Qwen3-TTS server's prompt store directory; empty = no cloning. */
  promptsDir?: string;
}

/**
 * Creates the engine of `kind` over the model server in `settings`. Rejects with
 * `EngineUnavailableError` when no URL is set or the URL is unusable, so the agent exits with a
 * message naming the setting.
 */
export async function createModelServerEngine(
  kind: ModelServerKind,
  settings: ModelServerSettings | undefined,
  log?: Logger,
): Promise<TtsEngine> {
  const engineId = kind === "openai-http" ? "openai-http" : "qwen3-tts";
  if (!settings?.url) {
    throw new EngineUnavailableError(
      engineId,
      `--engine ${kind} needs the model server's URL: set ${MODEL_SERVER_SETTING_ENV.url} or --engine-url`,
    );
  }
  const common = {
    baseUrl: settings.url,
    ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
    // 0 means "unknown": WAV answers say their rate; raw PCM then needs a configured one.
    ...(settings.sampleRateHz ? { sampleRateHz: settings.sampleRateHz } : {}),
    voices: settings.voices,
    timeoutMs: settings.timeoutMs,
    discoveryTimeoutMs: settings.discoveryTimeoutMs,
    maxResponseBytes: settings.maxResponseBytes,
    ...(log ? { log } : {}),
  };
  try {
    if (kind === "openai-http") {
      const { createOpenAiSpeechEngine } = await import("./openai-speech-engine.js");
      return await createOpenAiSpeechEngine({
        ...common,
        model: settings.model,
        responseFormat: settings.responseFormat,
      });
    }
    const { createQwen3TtsEngine } = await import("./qwen3-tts-engine.js");
    return await createQwen3TtsEngine({
      ...common,
      modelSize: settings.modelSize,
      ...(settings.promptsDir ? { promptsDir: settings.promptsDir } : {}),
    });
  } catch (err) {
    if (err instanceof RangeError) {
      throw new EngineUnavailableError(
        engineId,
        `${err.message} (${MODEL_SERVER_SETTING_ENV.url})`,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
}

/**
 * Creates the `openai-llm` engine over the server in `settings` with the language models named in
 * `models` (empty: the server's own list). Rejects with `EngineUnavailableError` naming the
 * setting when no URL is set or the URL is unusable.
 */
export async function createOpenAiLlmEngineFromSettings(
  settings: ModelServerSettings | undefined,
  models: readonly string[],
  log?: Logger,
): Promise<TtsEngine> {
  const engineId = "openai-llm";
  if (!settings?.url) {
    throw new EngineUnavailableError(
      engineId,
      `--engine openai-llm needs the LLM server's URL: set ${MODEL_SERVER_SETTING_ENV.url} or --engine-url`,
    );
  }
  const { createOpenAiLlmEngine } = await import("./openai-llm-engine.js");
  try {
    return await createOpenAiLlmEngine({
      baseUrl: settings.url,
      ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
      models,
      timeoutMs: settings.timeoutMs,
      discoveryTimeoutMs: settings.discoveryTimeoutMs,
      maxResponseBytes: settings.maxResponseBytes,
      ...(log ? { log } : {}),
    });
  } catch (err) {
    if (err instanceof RangeError) {
      throw new EngineUnavailableError(
        engineId,
        `${err.message} (${MODEL_SERVER_SETTING_ENV.url})`,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
}

/**
 * Creates the engines of a Tinybox node (`--engine tinybox-http`) from the agent's settings.
 * Rejects with `EngineUnavailableError` naming the setting when no URL is set or it is unusable.
 */
export async function createTinyboxEnginesFromSettings(
  settings: ModelServerSettings | undefined,
  llmModels: readonly string[],
  log?: Logger,
): Promise<TtsEngine[]> {
  if (!settings?.url) {
    throw new EngineUnavailableError(
      "tinybox",
      `--engine tinybox-http needs the node's URL: set ${MODEL_SERVER_SETTING_ENV.url} or --engine-url`,
    );
  }
  const { createTinyboxEngines } = await import("./tinybox-engine.js");
  try {
    return await createTinyboxEngines({
      baseUrl: settings.url,
      ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
      llmModels,
      sampleRateHz: settings.sampleRateHz,
      timeoutMs: settings.timeoutMs,
      discoveryTimeoutMs: settings.discoveryTimeoutMs,
      maxResponseBytes: settings.maxResponseBytes,
      ...(log ? { log } : {}),
    });
  } catch (err) {
    if (err instanceof RangeError) {
      throw new EngineUnavailableError(
        "tinybox",
        `${err.message} (${MODEL_SERVER_SETTING_ENV.url})`,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
}
