/** Text-to-speech engines: the contract every engine implements, its errors, and the engines. */
export {
  EngineInputError,
  EngineOverloadedError,
  EngineUnavailableError,
  isEngineInputError,
  isEngineOverloadedError,
  isEngineUnavailableError,
  isSynthesisFailedError,
  isUnknownVoiceError,
  SynthesisFailedError,
  UnknownVoiceError,
} from "./engine-errors.js";
export type { EspeakEngineOptions } from "./espeak/index.js";
export { createEspeakEngine } from "./espeak/index.js";
export type {
  EngineAnalysis,
  EngineAnalysisKind,
  EngineAnalyzeRequest,
  EngineAudioChunk,
  EngineChatMessage,
  EngineClonePrompt,
  EngineClonePromptResult,
  EngineCloneRequest,
  EngineGenerateRequest,
  EngineInfo,
  EngineSynthesisRequest,
  EngineTextDelta,
  EngineVoice,
  EngineWordTiming,
  GpuInfo,
  GpuProcessInfo,
  GpuReport,
  PcmFormat,
  TtsEngine,
} from "./tts-engine.js";
