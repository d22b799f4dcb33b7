/**
 * Pure audio helpers shared by engines and the gateway: WAV headers, MP3 encoding, sample-rate
 * conversion and sentence splitting. The Opus, FLAC and AAC encoders are loaded on first use
 * (`import("./compressed-encoder.js")`), so only their types are exported here.
 */
export type {
  CompressedEncoderOptions,
  CompressedStreamEncoder,
} from "./compressed-encoder.js";
export type { CompressedFormat } from "./compressed-formats.js";
export { COMPRESSED_CONTENT_TYPES } from "./compressed-formats.js";
export type { Mp3EncoderOptions, Mp3StreamEncoder, Mp3StreamInfo } from "./mp3-encoder.js";
export {
  createMp3Encoder,
  DEFAULT_MP3_KBPS_PER_CHANNEL,
  MP3_SAMPLE_RATES_HZ,
  readMp3Frames,
} from "./mp3-encoder.js";
export type {
  ReferenceAudioInfo,
  ReferenceAudioLimits,
  ReferenceAudioType,
} from "./reference-audio.js";
export {
  inspectReferenceAudio,
  isReferenceAudioError,
  ReferenceAudioError,
} from "./reference-audio.js";
export type { PcmResampler, PcmResamplerOptions, ResamplerFactory } from "./resampler.js";
export {
  DEFAULT_RESAMPLER_QUALITY,
  loadResamplerFactory,
  RESAMPLER_QUALITY_RANGE,
  resampledFrames,
} from "./resampler.js";
export type { SplitSentencesOptions } from "./sentences.js";
export { splitSentences } from "./sentences.js";
export type { WavHeaderOptions, WavInfo, WavLayout, WavSampleEncoding } from "./wav.js";
export {
  encodeWavHeader,
  isWavFormatError,
  parseWav,
  readWavLayout,
  WAV_HEADER_BYTES,
  WAV_UNKNOWN_SIZE,
  WavFormatError,
  wavDurationMs,
} from "./wav.js";
