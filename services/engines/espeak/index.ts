/**
 * The built-in CPU engine over eSpeak NG (npm `espeak-ng`, GPL-3.0, optional dependency), loaded
 * only inside its worker threads.
 */
export type { EspeakEngineOptions } from "./espeak-engine.js";
export { createEspeakEngine } from "./espeak-engine.js";
