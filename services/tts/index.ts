export {
  type AudioContainer,
  type AudioContainerOptions,
  type AudioStreamEncoder,
  chooseContainer,
  isSupportedEncoding,
  unsupportedMessage,
} from "./audio-container.js";
export {
  checkSynthesisRequest,
  type SynthesisLimits,
  toBackendRequest,
} from "./synthesis-request.js";
export {
  createTtsHandler,
  kAttemptsHeader,
  kBackendHeader,
  kQueueWaitHeader,
  type TtsHandlerOptions,
} from "./tts-handler.js";
