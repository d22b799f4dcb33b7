/**
 * The YIN fundamental frequency estimator (de Cheveigné and Kawahara, "YIN, a fundamental
 * frequency estimator for speech and music", JASA 111(4), 2002), steps 2 to 5 of the paper:
 * difference function, cumulative mean normalized difference, absolute threshold and parabolic
 * interpolation. Written for voxgate from the paper; it replaces a GPL-licensed package.
 */

/** Options of {@link createYinDetector}. */
export interface YinOptions {
  /** Sample rate of the frames the detector is given, in Hz. */
  sampleRateHz: number;
  /**
   * Absolute threshold on the cumulative mean normalized difference (step 4): the first dip
   * below it is taken as the period. The paper uses 0.1; speech whose pitch moves within a
   * window needs more.
   * @default 0.1
   */
  threshold?: number;
  /**
   * Least periodicity (1 − the normalized difference at the chosen lag) for a frame to count as
   * pitched; a dip found by the threshold but shallower than this is refused.
   * @default 0.1
   */
  minPeriodicity?: number;
}

/**
 * Returns a detector that estimates the f0 of one frame in Hz, or `null` when the frame has no
 * period below the threshold. A frame of `n` samples is searched for lags `1 .. ⌊n/2⌋ − 1` with an
 * integration window of `⌊n/2⌋` samples, so it finds f0 down to about `2 × sampleRateHz / n`.
 */
export function createYinDetector(
  options: YinOptions,
): (frame: ArrayLike<number>) => number | null {
  const threshold = options.threshold ?? 0.1;
  const minPeriodicity = options.minPeriodicity ?? 0.1;
  let scratch = new Float64Array(0);
  return (frame) => {
    const half = Math.floor(frame.length / 2);
    if (half < 3) {
      return null;
    }
    if (scratch.length !== half) {
      scratch = new Float64Array(half);
    }
    const d = scratch;
    // Step 2: the difference function d(τ) = Σ (x[j] − x[j+τ])² over the window of `half` samples.
    d[0] = 0;
    for (let tau = 1; tau < half; tau++) {
      let sum = 0;
      for (let j = 0; j < half; j++) {
        const delta = (frame[j] as number) - (frame[j + tau] as number);
        sum += delta * delta;
      }
      d[tau] = sum;
    }
    // Step 3: cumulative mean normalized difference, d'(0) = 1, d'(τ) = d(τ) / ((1/τ) Σ_{1..τ} d).
    d[0] = 1;
    let runningSum = 0;
    for (let tau = 1; tau < half; tau++) {
      runningSum += d[tau] as number;
      d[tau] = runningSum === 0 ? 1 : ((d[tau] as number) * tau) / runningSum;
    }
    // Step 4: the first lag whose value dips below the threshold, followed down to its minimum.
    let tau = 2;
    for (; tau < half; tau++) {
      if ((d[tau] as number) < threshold) {
        while (tau + 1 < half && (d[tau + 1] as number) < (d[tau] as number)) {
          tau++;
        }
        break;
      }
    }
    if (tau >= half || 1 - (d[tau] as number) < minPeriodicity) {
      return null;
    }
    // Step 5: parabolic interpolation of the dip for a period between samples.
    const period = interpolateMinimum(d, tau);
    return period > 0 ? options.sampleRateHz / period : null;
  };
}

// Vertex of the parabola through (τ−1, τ, τ+1); at the ends of the range the lag itself.
function interpolateMinimum(values: Float64Array, tau: number): number {
  if (tau < 1 || tau + 1 >= values.length) {
    return tau;
  }
  const left = values[tau - 1] as number;
  const centre = values[tau] as number;
  const right = values[tau + 1] as number;
  const curvature = left - 2 * centre + right;
  if (curvature === 0) {
    return tau;
  }
  return tau + (left - right) / (2 * curvature);
}
