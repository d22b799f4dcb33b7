/** Pure audio helpers shared by engines and the gateway: WAV headers and sentence splitting. */
export type { SplitSentencesOptions } from "./sentences.js";
export { splitSentences } from "./sentences.js";
export type { WavHeaderOptions, WavInfo } from "./wav.js";
export {
  encodeWavHeader,
  isWavFormatError,
  parseWav,
  WAV_HEADER_BYTES,
  WAV_UNKNOWN_SIZE,
  WavFormatError,
  wavDurationMs,
} from "./wav.js";
