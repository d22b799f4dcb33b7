/**
 * Integrated loudness per ITU-R BS.1770-4 (the measure EBU R128 uses) and sample peak, on 16-bit
 * PCM.
 */

/** Coefficients of one biquad section, normalized so that a0 = 1. */
export interface Biquad {
  b0: number;
  b1: number;
  b2: number;
  a1: number;
  a2: number;
}

// BS.1770-4 Table 1 (pre-filter, a high shelf modelling the head) and Table 2 (RLB weighting, a
// high pass), both given for 48 kHz only.
const SHELF_48K: Biquad = {
  b0: 1.53512485958697,
  b1: -2.69169618940638,
  b2: 1.19839281085285,
  a1: -1.69065929318241,
  a2: 0.73248077421585,
};
const HIGH_PASS_48K: Biquad = { b0: 1, b1: -2, b2: 1, a1: -1.99004745483398, a2: 0.99007225036621 };

// Analog prototypes fitted to the 48 kHz tables (the values libebur128 uses; pyloudnorm derives
// the same way with rounder numbers). Each filter is rebuilt for another rate with the bilinear
// transform, prewarped at its corner frequency, which reproduces the tables at 48 kHz to ~1e-6.
const SHELF_CORNER_HZ = 1681.974450955533;
const SHELF_GAIN_DB = 3.999843853973347;
const SHELF_Q = 0.7071752369554196;
const SHELF_BAND_EXPONENT = 0.4996667741545416;
const HIGH_PASS_CORNER_HZ = 38.13547087602444;
const HIGH_PASS_Q = 0.5003270373238773;

const BLOCK_SEGMENTS = 4; // 400 ms gating blocks made of four 100 ms steps: 75 % overlap
const SEGMENT_SECONDS = 0.1;
const ABSOLUTE_GATE_LUFS = -70;
const RELATIVE_GATE_LU = -10;
const LOUDNESS_OFFSET_DB = -0.691;

/**
 * Returns the two K-weighting biquads of BS.1770-4 for `sampleRateHz`: the standard's own
 * coefficients at 48 kHz, and the bilinear transform of the same analog filters at any other rate.
 */
export function kWeightingFilters(sampleRateHz: number): [shelf: Biquad, highPass: Biquad] {
  if (sampleRateHz === 48_000) {
    return [SHELF_48K, HIGH_PASS_48K];
  }
  return deriveKWeightingFilters(sampleRateHz);
}

/**
 * Derives the K-weighting biquads for `sampleRateHz` from their analog prototypes (exported so a
 * test can check the derivation against the standard's 48 kHz table).
 */
export function deriveKWeightingFilters(sampleRateHz: number): [shelf: Biquad, highPass: Biquad] {
  let k = Math.tan((Math.PI * SHELF_CORNER_HZ) / sampleRateHz);
  const vh = 10 ** (SHELF_GAIN_DB / 20);
  const vb = vh ** SHELF_BAND_EXPONENT;
  let a0 = 1 + k / SHELF_Q + k * k;
  const shelf: Biquad = {
    b0: (vh + (vb * k) / SHELF_Q + k * k) / a0,
    b1: (2 * (k * k - vh)) / a0,
    b2: (vh - (vb * k) / SHELF_Q + k * k) / a0,
    a1: (2 * (k * k - 1)) / a0,
    a2: (1 - k / SHELF_Q + k * k) / a0,
  };
  k = Math.tan((Math.PI * HIGH_PASS_CORNER_HZ) / sampleRateHz);
  a0 = 1 + k / HIGH_PASS_Q + k * k;
  // The standard's numerator is 1, -2, 1, not normalized by a0; keep it so 48 kHz matches.
  const highPass: Biquad = {
    b0: 1,
    b1: -2,
    b2: 1,
    a1: (2 * (k * k - 1)) / a0,
    a2: (1 - k / HIGH_PASS_Q + k * k) / a0,
  };
  return [shelf, highPass];
}

/**
 * Returns the BS.1770-4 weight of each channel for a channel count in the usual WAV order: 1.41
 * for the surround channels of 5.0 (L R C Ls Rs) and 5.1 (L R C LFE Ls Rs), 0 for the LFE, 1 for
 * everything else (mono, stereo and other layouts).
 */
export function channelWeights(channels: number): number[] {
  if (channels === 5) {
    return [1, 1, 1, 1.41, 1.41];
  }
  if (channels === 6) {
    return [1, 1, 1, 0, 1.41, 1.41];
  }
  return Array.from({ length: channels }, () => 1);
}

/**
 * Measures integrated loudness in LUFS per ITU-R BS.1770-4 of interleaved 16-bit PCM (full scale
 * 32768): K-weighting, mean square in 400 ms blocks every 100 ms, an absolute gate at -70 LUFS,
 * then a relative gate 10 LU below the loudness of the blocks that passed it. Returns `undefined`
 * when no block passes the gates: silence, or audio shorter than one 400 ms block.
 */
export function integratedLoudness(
  samples: Int16Array,
  sampleRateHz: number,
  channels: number,
): number | undefined {
  const frames = Math.floor(samples.length / channels);
  // Step boundaries are rounded per step so rates whose 100 ms is not whole (11025 Hz) still
  // cover the audio without drift.
  const segmentCount = Math.floor(frames / (sampleRateHz * SEGMENT_SECONDS));
  if (segmentCount < BLOCK_SEGMENTS) {
    return undefined;
  }
  const boundaries = Array.from({ length: segmentCount + 1 }, (_, i) =>
    Math.round(i * sampleRateHz * SEGMENT_SECONDS),
  );
  const weights = channelWeights(channels);
  const [shelf, highPass] = kWeightingFilters(sampleRateHz);
  // Weighted sum over channels of the K-weighted energy in each 100 ms step.
  const segmentEnergy = new Float64Array(segmentCount);
  for (let channel = 0; channel < channels; channel++) {
    const weight = weights[channel] ?? 1;
    if (weight === 0) {
      continue;
    }
    // The two biquads in series (transposed direct form II) are inlined: this loop runs once per
    // sample and channel, and locals keep it several times faster than a closure call.
    const { b0: p0, b1: p1, b2: p2, a1: pa1, a2: pa2 } = shelf;
    const { b0: q0, b1: q1, b2: q2, a1: qa1, a2: qa2 } = highPass;
    let s1 = 0;
    let s2 = 0;
    let t1 = 0;
    let t2 = 0;
    let frame = 0;
    for (let segment = 0; segment < segmentCount; segment++) {
      const end = boundaries[segment + 1] as number;
      let energy = 0;
      for (; frame < end; frame++) {
        const x = (samples[frame * channels + channel] as number) / 32768;
        const y = p0 * x + s1;
        s1 = p1 * x - pa1 * y + s2;
        s2 = p2 * x - pa2 * y;
        const z = q0 * y + t1;
        t1 = q1 * y - qa1 * z + t2;
        t2 = q2 * y - qa2 * z;
        energy += z * z;
      }
      segmentEnergy[segment] = (segmentEnergy[segment] as number) + weight * energy;
    }
  }

  const blockCount = segmentCount - BLOCK_SEGMENTS + 1;
  const blockPower = new Float64Array(blockCount);
  for (let block = 0; block < blockCount; block++) {
    let energy = 0;
    for (let s = block; s < block + BLOCK_SEGMENTS; s++) {
      energy += segmentEnergy[s] as number;
    }
    const length = (boundaries[block + BLOCK_SEGMENTS] as number) - (boundaries[block] as number);
    blockPower[block] = energy / length;
  }
  const absolute = gatedMeanPower(blockPower, powerOf(ABSOLUTE_GATE_LUFS));
  if (absolute === undefined) {
    return undefined;
  }
  const relative = gatedMeanPower(blockPower, absolute * 10 ** (RELATIVE_GATE_LU / 10));
  return relative === undefined ? undefined : loudnessOf(relative);
}

/**
 * Returns the sample peak of 16-bit PCM in dBFS (full scale 32768, so -32768 reads 0 dBFS), or
 * `undefined` when every sample is zero.
 */
export function samplePeakDbfs(samples: Int16Array): number | undefined {
  let peak = 0;
  for (let i = 0; i < samples.length; i++) {
    const magnitude = Math.abs(samples[i] as number);
    if (magnitude > peak) {
      peak = magnitude;
    }
  }
  return peak === 0 ? undefined : 20 * Math.log10(peak / 32768);
}

// Mean of the block powers strictly above `threshold` ("gated blocks" per the standard).
function gatedMeanPower(blockPower: Float64Array, threshold: number): number | undefined {
  let sum = 0;
  let count = 0;
  for (const power of blockPower) {
    if (power > threshold) {
      sum += power;
      count++;
    }
  }
  return count === 0 ? undefined : sum / count;
}

function loudnessOf(power: number): number {
  return LOUDNESS_OFFSET_DB + 10 * Math.log10(power);
}

function powerOf(loudness: number): number {
  return 10 ** ((loudness - LOUDNESS_OFFSET_DB) / 10);
}
