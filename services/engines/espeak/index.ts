/**
 * The built-in CPU engine over eSpeak NG (npm `espeak-ng`, GPL-3.0, optional dependency), loaded
 * only inside its worker threads, with voice cloning from pitch and speaking rate.
 */
export type { EspeakCloneParameters, EspeakClonePrompt } from "./espeak-clone.js";
export {
  ESPEAK_CLONE_CONTENT_TYPE,
  ESPEAK_CLONE_FORMAT,
  espeakCloneParameters,
  parseEspeakClonePrompt,
} from "./espeak-clone.js";
export type { EspeakEngineOptions } from "./espeak-engine.js";
export { createEspeakEngine, ESPEAK_VARIANTS } from "./espeak-engine.js";
