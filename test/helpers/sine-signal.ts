/**
 * A sine test signal as 16-bit PCM and its signal-to-noise ratio after processing, for the
 * resampling and encoder tests (the issue asks for ≥ 60 dB after resampling).
 */

/** `seconds` of a sine at `frequencyHz`, peak `amplitude` of full scale, interleaved, s16le. */
export function sinePcm(
  frequencyHz: number,
  sampleRateHz: number,
  seconds: number,
  options: { channels?: number; amplitude?: number } = {},
): Uint8Array {
  const channels = options.channels ?? 1;
  const amplitude = options.amplitude ?? 0.5;
  const frames = Math.round(sampleRateHz * seconds);
  const pcm = new Uint8Array(frames * channels * 2);
  const view = new DataView(pcm.buffer);
  for (let i = 0; i < frames; i++) {
    const value = Math.round(
      32767 * amplitude * Math.sin((2 * Math.PI * frequencyHz * i) / sampleRateHz),
    );
    for (let c = 0; c < channels; c++) view.setInt16((i * channels + c) * 2, value, true);
  }
  return pcm;
}

/** Channel `channel` of interleaved s16le PCM, as numbers. */
export function channelSamples(pcm: Uint8Array, channels = 1, channel = 0): Float64Array {
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const frames = Math.floor(pcm.byteLength / (2 * channels));
  const out = new Float64Array(frames);
  for (let i = 0; i < frames; i++) out[i] = view.getInt16((i * channels + channel) * 2, true);
  return out;
}

/**
 * SNR in dB of `samples` against the best-fitting sine of `frequencyHz` (amplitude, phase and
 * offset fitted by least squares) over the middle 80 %, so edge effects and any constant delay do
 * not count: what remains is distortion, aliasing and noise.
 */
export function sineSnrDb(
  samples: Float64Array,
  sampleRateHz: number,
  frequencyHz: number,
): number {
  const from = Math.floor(samples.length * 0.1);
  const to = Math.floor(samples.length * 0.9);
  // Normal equations of y ≈ a·sin + b·cos + c.
  const m = [
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ];
  const r = [0, 0, 0];
  const w = (2 * Math.PI * frequencyHz) / sampleRateHz;
  for (let i = from; i < to; i++) {
    const basis = [Math.sin(w * i), Math.cos(w * i), 1];
    const y = samples[i] ?? 0;
    for (let j = 0; j < 3; j++) {
      r[j] = (r[j] ?? 0) + (basis[j] ?? 0) * y;
      for (let k = 0; k < 3; k++) {
        const row = m[j] as number[];
        row[k] = (row[k] ?? 0) + (basis[j] ?? 0) * (basis[k] ?? 0);
      }
    }
  }
  const [a, b, c] = solve3(m, r);
  let signal = 0;
  let noise = 0;
  for (let i = from; i < to; i++) {
    const fit = a * Math.sin(w * i) + b * Math.cos(w * i);
    signal += fit * fit;
    noise += ((samples[i] ?? 0) - fit - c) ** 2;
  }
  return 10 * Math.log10(signal / Math.max(noise, 1e-12));
}

function solve3(m: number[][], r: number[]): [number, number, number] {
  const a = m.map((row, i) => [...row, r[i] ?? 0]);
  for (let col = 0; col < 3; col++) {
    let pivot = col;
    for (let row = col + 1; row < 3; row++) {
      if (Math.abs(a[row]?.[col] ?? 0) > Math.abs(a[pivot]?.[col] ?? 0)) pivot = row;
    }
    [a[col], a[pivot]] = [a[pivot] as number[], a[col] as number[]];
    const p = a[col] as number[];
    for (let row = 0; row < 3; row++) {
      if (row === col) continue;
      const q = a[row] as number[];
      const f = (q[col] ?? 0) / (p[col] ?? 1);
      for (let k = col; k < 4; k++) q[k] = (q[k] ?? 0) - f * (p[k] ?? 0);
    }
  }
  return [0, 1, 2].map((i) => (a[i]?.[3] ?? 0) / (a[i]?.[i] ?? 1)) as [number, number, number];
}
