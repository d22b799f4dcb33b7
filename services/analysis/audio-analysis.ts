/**
 * The measurements of `voxgate.v1.AudioAnalysis` and the voice profile used for cloning, computed
 * synchronously on 16-bit PCM. `analyze-audio.ts` runs the same functions off the event loop.
 */
import { AnalysisKind, type AudioAnalysis } from "../../gen/voxgate/v1/analysis_pb.js";
import { VoiceGender } from "../../gen/voxgate/v1/capabilities_pb.js";
import { estimateGender, GENDER_METHOD } from "./gender.js";
import { integratedLoudness, samplePeakDbfs } from "./loudness.js";
import { type PitchStats, pitchStats, trackPitch } from "./pitch.js";
import { estimateSpeakingRate, type SpeakingRate } from "./speaking-rate.js";

/** Interleaved signed 16-bit PCM to analyze. */
export interface PcmAudio {
  /** Interleaved samples; full scale is 32768. */
  samples: Int16Array;
  /** Samples per second per channel. */
  sampleRateHz: number;
  /** Interleaved channels; 1 for mono. */
  channels: number;
}

/** The fields of `voxgate.v1.AudioAnalysis`; pass to `create(AudioAnalysisSchema, init)`. */
export type AudioAnalysisInit = Omit<AudioAnalysis, "$typeName" | "$unknown">;

/** Pitch and rate of a voice, what a CPU clone prompt is made of (see {@link profileVoice}). */
export interface VoiceProfile {
  /** Length of the audio, in ms. */
  durationMs: number;
  /** f0 statistics of the voiced frames. */
  pitch: PitchStats;
  /** Speaking rate from syllable nuclei. */
  speakingRate: SpeakingRate;
}

/**
 * Value of `AudioAnalysis.analyzer` for analyses made here: the methods, so a reader knows what
 * the numbers mean.
 */
export const ANALYZER_NAME = `voxgate-dsp/1 (loudness ITU-R BS.1770-4; f0 YIN; gender ${GENDER_METHOD})`;

/** Kinds this analyzer measures; `AGE` is not among them (no method here estimates age). */
export const SUPPORTED_ANALYSIS_KINDS: readonly AnalysisKind[] = [
  AnalysisKind.BASIC,
  AnalysisKind.PITCH,
  AnalysisKind.GENDER,
];

/**
 * Measures `pcm` synchronously; `kinds` selects what, an empty list meaning every supported kind.
 *
 * Duration, sample rate and channels are always set. `BASIC` adds integrated loudness (LUFS, ITU-R
 * BS.1770-4) and sample peak (dBFS); `PITCH` adds median and standard deviation of f0 and the
 * voiced ratio (YIN, see `trackPitch`); `GENDER` adds an estimate from median f0 with
 * its confidence. `AGE` leaves age unset: no method here estimates it. A measure that does not
 * apply is left unset: loudness of silence or of less than 400 ms, peak of digital silence, f0 and
 * gender without voiced frames. Costs about 12 ms of CPU per second of audio (see
 * `analyzeAudio` for long inputs). Throws `RangeError` for a malformed `pcm`.
 */
export function analyzePcm(pcm: PcmAudio, kinds: readonly AnalysisKind[]): AudioAnalysisInit {
  checkPcm(pcm);
  const wanted = new Set(kinds.length === 0 ? SUPPORTED_ANALYSIS_KINDS : kinds);
  const frames = pcm.samples.length / pcm.channels;
  const result: AudioAnalysisInit = {
    durationMs: BigInt(Math.round((frames / pcm.sampleRateHz) * 1000)),
    sampleRateHz: pcm.sampleRateHz,
    channels: pcm.channels,
    gender: VoiceGender.UNSPECIFIED,
    analyzer: ANALYZER_NAME,
  };
  if (wanted.has(AnalysisKind.BASIC)) {
    setIfDefined(
      result,
      "loudnessLufs",
      integratedLoudness(pcm.samples, pcm.sampleRateHz, pcm.channels),
    );
    setIfDefined(result, "peakDbfs", samplePeakDbfs(pcm.samples));
  }
  if (wanted.has(AnalysisKind.PITCH) || wanted.has(AnalysisKind.GENDER)) {
    const stats = pitchStats(trackPitch(pcm.samples, pcm.sampleRateHz, pcm.channels));
    if (wanted.has(AnalysisKind.PITCH)) {
      setIfDefined(result, "medianF0Hz", stats.medianF0Hz);
      setIfDefined(result, "f0StddevHz", stats.f0StddevHz);
      result.voicedRatio = stats.voicedRatio;
    }
    if (wanted.has(AnalysisKind.GENDER) && stats.medianF0Hz !== undefined) {
      const estimate = estimateGender(stats.medianF0Hz);
      result.gender = estimate.gender;
      result.genderConfidence = estimate.confidence;
    }
  }
  return result;
}

/**
 * Profiles the voice in `pcm` synchronously: f0 statistics and speaking rate, the inputs of a CPU
 * clone prompt. Throws `RangeError` for a malformed `pcm`.
 */
export function profileVoice(pcm: PcmAudio): VoiceProfile {
  checkPcm(pcm);
  const track = trackPitch(pcm.samples, pcm.sampleRateHz, pcm.channels);
  return {
    durationMs: (pcm.samples.length / pcm.channels / pcm.sampleRateHz) * 1000,
    pitch: pitchStats(track),
    speakingRate: estimateSpeakingRate(track),
  };
}

/** Throws `RangeError` unless `pcm` has a positive integer rate and channels and whole frames. */
export function checkPcm(pcm: PcmAudio): void {
  const { samples, sampleRateHz, channels } = pcm;
  if (!(samples instanceof Int16Array)) {
    throw new RangeError("samples must be an Int16Array");
  }
  if (!Number.isInteger(sampleRateHz) || sampleRateHz < 1000 || sampleRateHz > 768_000) {
    throw new RangeError(`sampleRateHz must be an integer in 1000..768000, got ${sampleRateHz}`);
  }
  if (!Number.isInteger(channels) || channels < 1 || channels > 64) {
    throw new RangeError(`channels must be an integer in 1..64, got ${channels}`);
  }
  if (samples.length % channels !== 0) {
    throw new RangeError(`${samples.length} samples are not whole frames of ${channels} channels`);
  }
}

// exactOptionalPropertyTypes: an unset optional field must be absent, not `undefined`.
function setIfDefined<K extends "loudnessLufs" | "peakDbfs" | "medianF0Hz" | "f0StddevHz">(
  target: AudioAnalysisInit,
  key: K,
  value: number | undefined,
): void {
  if (value !== undefined) {
    target[key] = value;
  }
}
