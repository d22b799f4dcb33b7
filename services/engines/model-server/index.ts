/**
 * Engines that forward to a model server on the GPU host over HTTP: an OpenAI-compatible speech
 * server and the Qwen3-TTS local server.
 */

export {
  createLoopbackFileServer,
  type LoopbackFileServer,
  type LoopbackOffer,
} from "./loopback-file-server.js";
export type {
  ModelServerClient,
  ModelServerClientOptions,
  ModelServerRequest,
  ModelServerResponse,
} from "./model-server-client.js";
export { createModelServerClient } from "./model-server-client.js";
export type { ModelServerKind, ModelServerSettings } from "./model-server-engine.js";
export {
  createModelServerEngine,
  createOpenAiLlmEngineFromSettings,
  createTinyboxEnginesFromSettings,
} from "./model-server-engine.js";
export type { EngineErrorContext } from "./model-server-errors.js";
export {
  isModelServerHttpError,
  MODEL_SERVER_SETTING_ENV,
  ModelServerHttpError,
  ModelServerOverloadedError,
  toEngineError,
} from "./model-server-errors.js";
export type { OpenAiLlmEngineOptions } from "./openai-llm-engine.js";
export {
  chatBody,
  completionDelta,
  createOpenAiLlmEngine,
  OPENAI_CHAT_WIRE,
  OPENAI_LLM_ENGINE_ID,
  streamChat,
} from "./openai-llm-engine.js";
export type { OpenAiSpeechEngineOptions } from "./openai-speech-engine.js";
export { createOpenAiSpeechEngine, OPENAI_HTTP_ENGINE_ID } from "./openai-speech-engine.js";
export type { PcmStreamOptions } from "./pcm-stream.js";
export { MAX_WAV_HEADER_BYTES, readPcmStream } from "./pcm-stream.js";
export type { Qwen3TtsEngineOptions } from "./qwen3-tts-engine.js";
export {
  createQwen3TtsEngine,
  QWEN3_ENGINE_ID,
  QWEN3_PROMPT_CONTENT_TYPE,
  qwen3Language,
  qwen3PromptName,
  VOICE_DESIGN_MODE,
} from "./qwen3-tts-engine.js";
export { MAX_SSE_EVENT_BYTES, readSseData } from "./sse-events.js";
export {
  createTinyboxEngines,
  parseTinyboxMetrics,
  TINYBOX_DEFAULT_ENGINES,
  TINYBOX_DEFAULT_LLM_MODEL,
  TINYBOX_ENGINE_ID,
  TINYBOX_TTS_PARAMS,
  type TinyboxEngineOptions,
  TORTOISE_VOICES,
} from "./tinybox-engine.js";
export type { DiscoveredVoices, DiscoverVoicesOptions } from "./voice-discovery.js";
export { discoverVoices, MAX_DISCOVERED_VOICES, parseVoiceList } from "./voice-discovery.js";
export { OPENAI_WIRE, QWEN3_WIRE } from "./wire-fields.js";
