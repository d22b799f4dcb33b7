/**
 * Fundamental frequency (f0) tracking on 16-bit PCM with the YIN detector (`yin.ts`), frame by
 * frame, with an energy gate for voicing and guards against YIN's octave errors.
 */
import { createYinDetector } from "./yin.js";

/** Options of {@link trackPitch}. */
export interface PitchTrackOptions {
  /**
   * Lowest f0 looked for; it sets the analysis window (two periods of it).
   * @default 65
   */
  minF0Hz?: number;
  /**
   * Highest f0 accepted.
   * @default 600
   */
  maxF0Hz?: number;
  /**
   * Time between frame starts.
   * @default 10
   */
  hopMs?: number;
  /**
   * YIN's threshold on the cumulative mean normalized difference (the aperiodic share tolerated).
   * Speech whose pitch moves fast is less periodic within a window: on eSpeak speech at 175 wpm,
   * 0.15 found a pitch in 33 % of the frames, 0.3 in 42 %, at 350 wpm 3 % against 16 %.
   * @default 0.3
   */
  yinThreshold?: number;
}

/** One analysis frame of {@link trackPitch}. */
export interface PitchFrame {
  /** f0 in Hz when the frame is voiced, after octave correction; undefined otherwise. */
  f0Hz: number | undefined;
  /** RMS level of the (low-passed, mono) frame in dBFS; -Infinity for digital silence. */
  levelDb: number;
  /** Whether the frame is loud enough to count as sound rather than pause or noise floor. */
  audible: boolean;
}

/** Output of {@link trackPitch}. */
export interface PitchTrack {
  /** One entry per hop, in time order. */
  frames: PitchFrame[];
  /** Time between frames, in ms. */
  hopMs: number;
}

/** Summary statistics of a {@link PitchTrack}, as in `voxgate.v1.AudioAnalysis`. */
export interface PitchStats {
  /** Median f0 of the voiced frames; undefined when none is voiced. */
  medianF0Hz: number | undefined;
  /** Standard deviation of f0 over the voiced frames. */
  f0StddevHz: number | undefined;
  /** 10th and 90th percentiles of f0, a robust range. */
  f0RangeHz: [low: number, high: number] | undefined;
  /** Voiced frames over all frames, 0..1 (silence counts as unvoiced). */
  voicedRatio: number;
}

// Pitch is tracked at 8 kHz or a little less: voices have no f0 above 1 kHz, and YIN's cost grows
// with the square of the window in samples, so this is 8-36 times cheaper than at 22-48 kHz. At
// most 8 kHz also keeps the window for 65 Hz within 256 samples.
const MAX_TRACKING_RATE_HZ = 8000;
// Frames quieter than this, or this far below the loud frames, are pause or background.
const SILENCE_FLOOR_DB = -50;
const BELOW_LOUD_DB = 35;
// YIN picks a sub- or super-harmonic now and then: a frame about an octave (x2 or x0.5, within
// this ratio of it) away from the median of its neighbours is moved back by that octave.
const OCTAVE_TOLERANCE = 0.2;
const NEIGHBOUR_FRAMES = 2;
// Voiced runs shorter than this are clicks or noise that happened to look periodic.
const MIN_RUN_FRAMES = 3;

/**
 * Tracks f0 over mono-mixed 16-bit PCM: the channels are averaged, low-passed and decimated to
 * 8 kHz or a little less, then cut into frames every `hopMs` whose window holds two periods of `minF0Hz`
 * (32-46 ms). A frame is voiced when it is audible (above -50 dBFS and within 35 dB of the 95th
 * percentile frame level) and YIN finds a period in `minF0Hz..maxF0Hz`. Octave errors are
 * repaired against the median of the neighbouring voiced frames, then against the median of the
 * track (frames still more than an octave from it are dropped), and voiced runs shorter than
 * 30 ms are dropped.
 */
export function trackPitch(
  samples: Int16Array,
  sampleRateHz: number,
  channels: number,
  options: PitchTrackOptions = {},
): PitchTrack {
  const minF0Hz = options.minF0Hz ?? 65;
  const maxF0Hz = options.maxF0Hz ?? 600;
  const hopMs = options.hopMs ?? 10;
  const { signal, rateHz } = downmixAndDecimate(samples, sampleRateHz, channels);
  // YIN looks for lags up to half of the frame, so a frame of two periods of minF0Hz (rounded up
  // to a power of two, as the detector was tuned with) finds f0 down to minF0Hz.
  let windowLength = 2;
  while (windowLength < (2 * rateHz) / minF0Hz) {
    windowLength *= 2;
  }
  const hop = Math.max(1, Math.round((rateHz * hopMs) / 1000));
  const detect = createYinDetector({
    sampleRateHz: rateHz,
    threshold: options.yinThreshold ?? 0.3,
    minPeriodicity: 0.1,
  });

  const frameCount =
    signal.length >= windowLength ? Math.floor((signal.length - windowLength) / hop) + 1 : 0;
  const levels = new Float64Array(frameCount);
  for (let f = 0; f < frameCount; f++) {
    levels[f] = rmsDb(signal, f * hop, windowLength);
  }
  const loud = percentile(Array.from(levels).filter(Number.isFinite), 0.95) ?? -Infinity;
  const gateDb = Math.max(SILENCE_FLOOR_DB, loud - BELOW_LOUD_DB);

  const raw: (number | undefined)[] = new Array(frameCount);
  const frames: PitchFrame[] = new Array(frameCount);
  for (let f = 0; f < frameCount; f++) {
    const levelDb = levels[f] as number;
    const audible = levelDb > gateDb;
    let f0Hz: number | undefined;
    if (audible) {
      const found = detect(signal.subarray(f * hop, f * hop + windowLength));
      f0Hz = found !== null && found >= minF0Hz && found <= maxF0Hz ? found : undefined;
    }
    raw[f] = f0Hz;
    frames[f] = { f0Hz, levelDb, audible };
  }
  repairOctaveJumps(raw, frames);
  foldOutliers(frames);
  dropShortRuns(frames);
  return { frames, hopMs: (hop / rateHz) * 1000 };
}

/** Summarizes a {@link PitchTrack}: median, standard deviation, 10-90 % range, voiced share. */
export function pitchStats(track: PitchTrack): PitchStats {
  const voiced = track.frames.flatMap((frame) => (frame.f0Hz === undefined ? [] : [frame.f0Hz]));
  const voicedRatio = track.frames.length === 0 ? 0 : voiced.length / track.frames.length;
  if (voiced.length === 0) {
    return { medianF0Hz: undefined, f0StddevHz: undefined, f0RangeHz: undefined, voicedRatio };
  }
  voiced.sort((a, b) => a - b);
  const mean = voiced.reduce((sum, f0) => sum + f0, 0) / voiced.length;
  const variance = voiced.reduce((sum, f0) => sum + (f0 - mean) ** 2, 0) / voiced.length;
  return {
    medianF0Hz: sortedPercentile(voiced, 0.5),
    f0StddevHz: Math.sqrt(variance),
    f0RangeHz: [sortedPercentile(voiced, 0.1), sortedPercentile(voiced, 0.9)],
    voicedRatio,
  };
}

// Averages the channels, scales to -1..1 and decimates by an integer factor to 8 kHz or less after
// a 4th-order Butterworth low pass at 0.4 of the new rate, so nothing aliases onto the f0 range.
function downmixAndDecimate(
  samples: Int16Array,
  sampleRateHz: number,
  channels: number,
): { signal: Float32Array; rateHz: number } {
  const factor = Math.max(1, Math.ceil(sampleRateHz / MAX_TRACKING_RATE_HZ));
  const rateHz = sampleRateHz / factor;
  const frames = Math.floor(samples.length / channels);
  const signal = new Float32Array(Math.floor(frames / factor));
  const lowPass =
    factor > 1 ? createButterworthLowPass(0.4 * rateHz, sampleRateHz) : (x: number) => x;
  const scale = 1 / (32768 * channels);
  for (let frame = 0; frame < frames; frame++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) {
      sum += samples[frame * channels + c] as number;
    }
    const y = lowPass(sum * scale);
    if (frame % factor === 0) {
      const index = frame / factor;
      if (index < signal.length) {
        signal[index] = y;
      }
    }
  }
  return { signal, rateHz };
}

// 4th-order Butterworth low pass as two biquads (Q 0.5412 and 1.3066), bilinear transform.
function createButterworthLowPass(cutoffHz: number, sampleRateHz: number): (x: number) => number {
  const sections = [0.541196100146197, 1.306562964876377].map((q) => {
    const w = (2 * Math.PI * cutoffHz) / sampleRateHz;
    const alpha = Math.sin(w) / (2 * q);
    const cos = Math.cos(w);
    const a0 = 1 + alpha;
    return {
      b0: (1 - cos) / 2 / a0,
      b1: (1 - cos) / a0,
      b2: (1 - cos) / 2 / a0,
      a1: (-2 * cos) / a0,
      a2: (1 - alpha) / a0,
      s1: 0,
      s2: 0,
    };
  });
  return (x) => {
    let value = x;
    for (const s of sections) {
      const y = s.b0 * value + s.s1;
      s.s1 = s.b1 * value - s.a1 * y + s.s2;
      s.s2 = s.b2 * value - s.a2 * y;
      value = y;
    }
    return value;
  };
}

function repairOctaveJumps(raw: (number | undefined)[], frames: PitchFrame[]): void {
  for (let f = 0; f < raw.length; f++) {
    const f0 = raw[f];
    if (f0 === undefined) {
      continue;
    }
    const neighbours: number[] = [];
    for (let n = f - NEIGHBOUR_FRAMES; n <= f + NEIGHBOUR_FRAMES; n++) {
      const value = n === f ? undefined : raw[n];
      if (value !== undefined) {
        neighbours.push(value);
      }
    }
    if (neighbours.length < 2) {
      continue;
    }
    neighbours.sort((a, b) => a - b);
    const ratio = f0 / sortedPercentile(neighbours, 0.5);
    const frame = frames[f] as PitchFrame;
    if (Math.abs(ratio - 2) < 2 * OCTAVE_TOLERANCE) {
      frame.f0Hz = f0 / 2;
    } else if (Math.abs(ratio - 0.5) < 0.5 * OCTAVE_TOLERANCE) {
      frame.f0Hz = f0 * 2;
    }
  }
}

// Second guard, against the whole track: a frame about an octave above or below the median is
// moved by that octave; one still more than an octave away from it is dropped as a detection
// error (speech intonation stays within about an octave of its median; measured on eSpeak speech,
// the frames left beyond it were 2.3x and 3.5x harmonics that doubled the standard deviation).
function foldOutliers(frames: PitchFrame[]): void {
  const voiced = frames.flatMap((frame) => (frame.f0Hz === undefined ? [] : [frame.f0Hz]));
  if (voiced.length === 0) {
    return;
  }
  const median = sortedPercentile(
    voiced.sort((a, b) => a - b),
    0.5,
  );
  for (const frame of frames) {
    if (frame.f0Hz === undefined) {
      continue;
    }
    let ratio = frame.f0Hz / median;
    if (ratio >= 1.8 && ratio <= 2.4) {
      ratio /= 2;
    } else if (ratio >= 0.42 && ratio <= 0.56) {
      ratio *= 2;
    }
    frame.f0Hz = ratio >= 0.5 && ratio <= 2 ? ratio * median : undefined;
  }
}

function dropShortRuns(frames: PitchFrame[]): void {
  let start = 0;
  while (start < frames.length) {
    if (frames[start]?.f0Hz === undefined) {
      start++;
      continue;
    }
    let end = start;
    while (end < frames.length && frames[end]?.f0Hz !== undefined) {
      end++;
    }
    if (end - start < MIN_RUN_FRAMES) {
      for (let f = start; f < end; f++) {
        (frames[f] as PitchFrame).f0Hz = undefined;
      }
    }
    start = end;
  }
}

function rmsDb(signal: Float32Array, start: number, length: number): number {
  let sum = 0;
  for (let i = start; i < start + length; i++) {
    const x = signal[i] as number;
    sum += x * x;
  }
  return 10 * Math.log10(sum / length);
}

function percentile(values: number[], q: number): number | undefined {
  if (values.length === 0) {
    return undefined;
  }
  return sortedPercentile(
    values.sort((a, b) => a - b),
    q,
  );
}

// Linear interpolation between the closest ranks of a sorted, non-empty array.
function sortedPercentile(sorted: number[], q: number): number {
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const low = sorted[below] as number;
  const high = sorted[Math.min(below + 1, sorted.length - 1)] as number;
  return low + (high - low) * (position - below);
}
