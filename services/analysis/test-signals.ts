/**
 * Deterministic signals with known properties (tones, noise, syllable trains) for the analysis
 * tests and benchmarks. Not used by the gateway or agents.
 */

/** Returns `seconds` of a sine at `frequencyHz`, peak `amplitude` (1 = full scale), as floats. */
export function sine(
  frequencyHz: number,
  sampleRateHz: number,
  seconds: number,
  amplitude = 1,
): Float64Array {
  const out = new Float64Array(Math.round(sampleRateHz * seconds));
  for (let i = 0; i < out.length; i++) {
    out[i] = amplitude * Math.sin((2 * Math.PI * frequencyHz * i) / sampleRateHz);
  }
  return out;
}

/**
 * Returns a harmonic tone at `f0Hz` whose k-th harmonic (k = 1..harmonics) has amplitude 1/k,
 * scaled so that the peak is about `amplitude`; `vibrato` modulates f0 by that share at 5 Hz.
 */
export function harmonicTone(
  f0Hz: number,
  sampleRateHz: number,
  seconds: number,
  options: { harmonics?: number; amplitude?: number; vibrato?: number } = {},
): Float64Array {
  const harmonics = options.harmonics ?? 8;
  const out = new Float64Array(Math.round(sampleRateHz * seconds));
  let phase = 0;
  let peak = 0;
  for (let i = 0; i < out.length; i++) {
    const f = f0Hz * (1 + (options.vibrato ?? 0) * Math.sin((2 * Math.PI * 5 * i) / sampleRateHz));
    phase += (2 * Math.PI * f) / sampleRateHz;
    let value = 0;
    for (let k = 1; k <= harmonics && k * f < sampleRateHz / 2; k++) {
      value += Math.sin(k * phase) / k;
    }
    out[i] = value;
    peak = Math.max(peak, Math.abs(value));
  }
  const scale = (options.amplitude ?? 0.5) / (peak || 1);
  return out.map((v) => v * scale);
}

/** Returns white noise, uniform and then scaled to the RMS `rms` (1 = full scale), seeded. */
export function whiteNoise(
  sampleRateHz: number,
  seconds: number,
  rms: number,
  seed = 1,
): Float64Array {
  const random = mulberry32(seed);
  const out = new Float64Array(Math.round(sampleRateHz * seconds)).map(() => random() * 2 - 1);
  return scaleToRms(out, rms);
}

/** Returns pink (1/f) noise (Paul Kellet's filter on white noise) at the RMS `rms`, seeded. */
export function pinkNoise(
  sampleRateHz: number,
  seconds: number,
  rms: number,
  seed = 2,
): Float64Array {
  const random = mulberry32(seed);
  const out = new Float64Array(Math.round(sampleRateHz * seconds));
  let [b0, b1, b2, b3, b4, b5, b6] = [0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < out.length; i++) {
    const white = random() * 2 - 1;
    b0 = 0.99886 * b0 + white * 0.0555179;
    b1 = 0.99332 * b1 + white * 0.0750759;
    b2 = 0.969 * b2 + white * 0.153852;
    b3 = 0.8665 * b3 + white * 0.3104856;
    b4 = 0.55 * b4 + white * 0.5329522;
    b5 = -0.7616 * b5 - white * 0.016898;
    out[i] = b0 + b1 + b2 + b3 + b4 + b5 + b6 + white * 0.5362;
    b6 = white * 0.115926;
  }
  return scaleToRms(out, rms);
}

/**
 * Returns a train of "syllables": harmonic bursts at `f0Hz` of `syllableMs`, each followed by
 * `gapMs` at a level 30 dB lower, `count` times.
 */
export function syllableTrain(
  f0Hz: number,
  sampleRateHz: number,
  count: number,
  syllableMs: number,
  gapMs: number,
): Float64Array {
  const period = Math.round(((syllableMs + gapMs) / 1000) * sampleRateHz);
  const on = Math.round((syllableMs / 1000) * sampleRateHz);
  const tone = harmonicTone(f0Hz, sampleRateHz, (count * period) / sampleRateHz);
  return tone.map((v, i) => {
    const t = i % period;
    // Raised-cosine envelope over the burst, like a vowel's rise and fall.
    return t < on ? v * 0.5 * (1 - Math.cos((2 * Math.PI * t) / on)) : v * 0.03;
  });
}

/** Converts floats (1 = full scale) to 16-bit PCM, rounding and clipping. */
export function toInt16(signal: ArrayLike<number>): Int16Array {
  const out = new Int16Array(signal.length);
  for (let i = 0; i < signal.length; i++) {
    out[i] = Math.max(-32768, Math.min(32767, Math.round((signal[i] as number) * 32768)));
  }
  return out;
}

/** Interleaves channels of equal length. */
export function interleave(...channels: ArrayLike<number>[]): Float64Array {
  const frames = channels[0]?.length ?? 0;
  const out = new Float64Array(frames * channels.length);
  for (let f = 0; f < frames; f++) {
    for (let c = 0; c < channels.length; c++) {
      out[f * channels.length + c] = channels[c]?.[f] as number;
    }
  }
  return out;
}

function scaleToRms(signal: Float64Array, rms: number): Float64Array {
  const current = Math.sqrt(signal.reduce((sum, v) => sum + v * v, 0) / signal.length);
  return signal.map((v) => (v * rms) / current);
}

// Small seeded PRNG (public domain), so every run uses the same noise.
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
