/** The OpenAI-compatible speech API: `/v1/audio/speech`, `/v1/audio/voices`, `/v1/models`. */
export {
  listSpeechModels,
  type ModelSource,
  type OpenAiModel,
  speakingEngines,
  speechModelCatalog,
} from "./model-catalog.js";
export {
  DEFAULT_VOICE_ALIASES,
  type ModelAliases,
  type ModelAliasTarget,
  modelAliasesSchema,
  resolveVoiceAlias,
  type VoiceAliasContext,
  type VoiceAliases,
  type VoiceAliasTarget,
  voiceAliasesSchema,
} from "./openai-aliases.js";
export {
  invalidRequest,
  isOpenAiError,
  OpenAiError,
  type OpenAiErrorBody,
  toOpenAiError,
  writeOpenAiError,
} from "./openai-error.js";
export {
  createOpenAiFrontend,
  kSampleRateHeader,
  kTimeoutHeader,
  type OpenAiFrontendOptions,
} from "./openai-frontend.js";
export { OPENAI_ROUTES, OPENAI_SCHEMAS, type OpenAiRouteId } from "./openai-openapi.js";
export { openAiSettings } from "./openai-settings.js";
export {
  OPENAI_SPEECH_MODELS,
  OPENAI_VOICES,
  parseSpeechRequest,
  resolveModel,
  type SpeechCall,
  type SpeechModelCatalog,
  type SpeechRequestOptions,
  type SpeechResponseFormat,
  type SpeechStreamFormat,
} from "./speech-request.js";
