/**
 * Audio analysis in plain TypeScript: integrated loudness (ITU-R BS.1770-4), sample peak, f0
 * statistics (YIN), a gender estimate from f0, speaking rate, and WAV decoding for it.
 */
export type { AnalyzeAudioOptions } from "./analyze-audio.js";
export { analyzeAudio, analyzeVoiceProfile } from "./analyze-audio.js";
export type { AudioAnalysisInit, PcmAudio, VoiceProfile } from "./audio-analysis.js";
export {
  ANALYZER_NAME,
  analyzePcm,
  profileVoice,
  SUPPORTED_ANALYSIS_KINDS,
} from "./audio-analysis.js";
export {
  AudioDecodeError,
  decodeAudioForAnalysis,
  isAudioDecodeError,
  WAV_CONTENT_TYPES,
} from "./decode-audio.js";
export type { GenderEstimate } from "./gender.js";
export { estimateGender } from "./gender.js";
export type { Biquad } from "./loudness.js";
export { integratedLoudness, kWeightingFilters, samplePeakDbfs } from "./loudness.js";
export type { PitchFrame, PitchStats, PitchTrack, PitchTrackOptions } from "./pitch.js";
export { pitchStats, trackPitch } from "./pitch.js";
export type { SpeakingRate } from "./speaking-rate.js";
export { estimateSpeakingRate } from "./speaking-rate.js";
export type { VoiceFeatures } from "./voice-features.js";
export {
  BRIGHTNESS_HZ,
  measureVoiceFeatures,
  PITCH_BUCKET_HZ,
  pitchBucket,
} from "./voice-features.js";
export type { Int16Pcm, WavLayout, WavSampleEncoding } from "./wav-reader.js";
export { decodeWavToInt16, readWavLayout } from "./wav-reader.js";
