/**
 * A speaker gender estimate from median f0 alone: a coarse cue (adult male speech sits around
 * 85-155 Hz, adult female around 165-255 Hz, and the two overlap near 150-180 Hz), so its
 * confidence says how far the voice is from that overlap.
 */
import { VoiceGender } from "../../gen/voxgate/v1/capabilities_pb.js";

/** What {@link estimateGender} returns. */
export interface GenderEstimate {
  /** `MALE` below the boundary, `FEMALE` above it. */
  gender: VoiceGender;
  /** 0.5 (a coin toss) at the boundary, rising to 0.95 at 7 semitones from it. */
  confidence: number;
}

/** Method name reported in `AudioAnalysis.analyzer` for estimates made here. */
export const GENDER_METHOD = "median-f0 threshold at 165 Hz";

// Midpoint of the male/female overlap in f0; distances are measured in semitones from it.
const BOUNDARY_HZ = 165;
// Semitones from the boundary at which confidence reaches its ceiling; 150 and 180 Hz are both
// about 1.5 semitones away and get 0.6.
const FULL_CONFIDENCE_SEMITONES = 7;
const MAX_CONFIDENCE = 0.95;

/**
 * Estimates speaker gender from the median f0 of voiced speech, in Hz. Confidence grows linearly
 * with the distance from 165 Hz in semitones: 0.5 at 165 Hz, about 0.6 at 150 or 180 Hz, 0.95
 * (never more: f0 alone cannot be certain) at 7 semitones or beyond (110 Hz, 247 Hz).
 */
export function estimateGender(medianF0Hz: number): GenderEstimate {
  const semitones = 12 * Math.log2(medianF0Hz / BOUNDARY_HZ);
  const share = Math.min(1, Math.abs(semitones) / FULL_CONFIDENCE_SEMITONES);
  return {
    gender: semitones < 0 ? VoiceGender.MALE : VoiceGender.FEMALE,
    confidence: 0.5 + (MAX_CONFIDENCE - 0.5) * share,
  };
}
