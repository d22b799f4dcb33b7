/**
 * The voice features StoryForge Cloud stores with a voice (`measured.features`): f0 median and
 * 10th/90th percentiles with Cloud's pitch buckets, the median spectral centroid with its
 * brightness buckets, and the RMS level. The thresholds are Cloud's own (its local fallback in
 * `voice_meta.py`), so a voice is labelled the same whichever side measured it.
 */
import type { PcmAudio } from "./audio-analysis.js";
import { pitchStats, trackPitch } from "./pitch.js";

/** Cloud's feature dictionary; keys absent when they cannot be measured (no voiced frame). */
export interface VoiceFeatures {
  /** RMS level of the whole clip on a 0..1 scale (full scale = 1), as Cloud computes it. */
  rms: number;
  /** Median f0 of the voiced frames, in Hz. */
  f0_hz_median?: number;
  /** 10th percentile of f0, in Hz. */
  f0_hz_p10?: number;
  /** 90th percentile of f0, in Hz. */
  f0_hz_p90?: number;
  /** `low` below 140 Hz, `high` above 210 Hz, else `medium`. */
  pitch_bucket?: "low" | "medium" | "high";
  /** Median spectral centroid of 40 ms Hann-windowed frames, in Hz. */
  centroid_hz_median?: number;
  /** `dark` below 1700 Hz, `bright` above 2600 Hz, else `neutral`. */
  brightness?: "dark" | "neutral" | "bright";
}

/** Cloud's pitch bucket edges, in Hz. */
export const PITCH_BUCKET_HZ = { low: 140, high: 210 } as const;
/** Cloud's brightness edges on the spectral centroid, in Hz. */
export const BRIGHTNESS_HZ = { dark: 1700, bright: 2600 } as const;

// Cloud's frame: 40 ms; centroids every 4 hops of 10 ms.
const FRAME_MS = 40;
const CENTROID_STEP_MS = 40;
// Cloud skips nothing for centroids; frames of digital silence have no centroid at all.
const MAX_CENTROID_FRAMES = 1500;

/**
 * Measures `pcm` (mixed to mono) the way Cloud labels voices. f0 comes from the gateway's YIN
 * tracker (`trackPitch`), not Cloud's autocorrelation, so values differ slightly; the buckets are
 * Cloud's. The centroid uses a direct DFT on at most 1500 frames (60 s), about 40 ms of CPU per
 * second of audio at 16 kHz.
 */
export function measureVoiceFeatures(pcm: PcmAudio): VoiceFeatures {
  const mono = toMono(pcm);
  let sum = 0;
  for (const v of mono) sum += v * v;
  const features: VoiceFeatures = { rms: Math.sqrt(sum / Math.max(1, mono.length) + 1e-12) };
  const stats = pitchStats(trackPitch(pcm.samples, pcm.sampleRateHz, pcm.channels));
  if (stats.medianF0Hz !== undefined) {
    features.f0_hz_median = stats.medianF0Hz;
    if (stats.f0RangeHz) {
      features.f0_hz_p10 = stats.f0RangeHz[0];
      features.f0_hz_p90 = stats.f0RangeHz[1];
    }
    features.pitch_bucket = pitchBucket(stats.medianF0Hz);
  }
  const centroid = medianCentroidHz(mono, pcm.sampleRateHz);
  if (centroid !== undefined) {
    features.centroid_hz_median = centroid;
    features.brightness =
      centroid < BRIGHTNESS_HZ.dark
        ? "dark"
        : centroid > BRIGHTNESS_HZ.bright
          ? "bright"
          : "neutral";
  }
  return features;
}

/** Cloud's pitch bucket of a median f0. */
export function pitchBucket(medianF0Hz: number): "low" | "medium" | "high" {
  return medianF0Hz < PITCH_BUCKET_HZ.low
    ? "low"
    : medianF0Hz > PITCH_BUCKET_HZ.high
      ? "high"
      : "medium";
}

function toMono(pcm: PcmAudio): Float32Array {
  const frames = pcm.samples.length / pcm.channels;
  const mono = new Float32Array(frames);
  for (let i = 0; i < frames; i++) {
    let v = 0;
    for (let c = 0; c < pcm.channels; c++) v += pcm.samples[i * pcm.channels + c] as number;
    mono[i] = v / pcm.channels / 32768;
  }
  return mono;
}

function medianCentroidHz(mono: Float32Array, rate: number): number | undefined {
  // A DFT of a 40 ms frame at 48 kHz is 1920² operations; decimate by an integer factor to at most
  // 16 kHz first (centroids of speech sit well below 8 kHz; a 2-tap average is enough here).
  const factor = Math.max(1, Math.floor(rate / 16_000));
  const r = rate / factor;
  const x = new Float32Array(Math.floor(mono.length / factor));
  for (let i = 0; i < x.length; i++) {
    let v = 0;
    for (let k = 0; k < factor; k++) v += mono[i * factor + k] as number;
    x[i] = v / factor;
  }
  const n = Math.round((FRAME_MS / 1000) * r);
  const step = Math.round((CENTROID_STEP_MS / 1000) * r);
  if (n < 16 || x.length < n) return undefined;
  const window = new Float32Array(n);
  for (let i = 0; i < n; i++) window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1));
  const bins = Math.floor(n / 2) + 1;
  const cos = new Float32Array(n);
  const sin = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    cos[i] = Math.cos((2 * Math.PI * i) / n);
    sin[i] = Math.sin((2 * Math.PI * i) / n);
  }
  const centroids: number[] = [];
  const frame = new Float32Array(n);
  for (
    let start = 0;
    start + n <= x.length && centroids.length < MAX_CENTROID_FRAMES;
    start += step
  ) {
    let energy = 0;
    for (let i = 0; i < n; i++) {
      const v = (x[start + i] as number) * (window[i] as number);
      frame[i] = v;
      energy += v * v;
    }
    if (energy === 0) continue;
    let weighted = 0;
    let total = 0;
    for (let k = 0; k < bins; k++) {
      let re = 0;
      let im = 0;
      for (let i = 0, idx = 0; i < n; i++, idx = (idx + k) % n) {
        const v = frame[i] as number;
        re += v * (cos[idx] as number);
        im -= v * (sin[idx] as number);
      }
      // Cloud adds 1e-9 to each magnitude.
      const mag = Math.sqrt(re * re + im * im) + 1e-9;
      weighted += ((k * r) / n) * mag;
      total += mag;
    }
    centroids.push(weighted / total);
  }
  if (centroids.length === 0) return undefined;
  centroids.sort((a, b) => a - b);
  const mid = centroids.length >> 1;
  return centroids.length % 2
    ? (centroids[mid] as number)
    : ((centroids[mid - 1] as number) + (centroids[mid] as number)) / 2;
}
