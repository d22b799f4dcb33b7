/** Options of {@link retryDelayMs}. */
export interface RetryDelayOptions {
  /** Delay before the second attempt, in ms; each later one doubles it. */
  baseMs: number;
  /** Longest delay, in ms. */
  maxMs: number;
  /** Source of randomness in [0, 1). @default Math.random */
  random?: () => number;
}

/**
 * Delay before the attempt after `attempt` (1 = the first run failed): `baseMs · 2^(attempt-1)`,
 * capped at `maxMs`, then "equal jitter" — a random point in its upper half — so jobs that failed
 * together (a backend outage) do not all come back at the same instant, yet each still waits at
 * least half the nominal delay.
 */
export function retryDelayMs(attempt: number, options: RetryDelayOptions): number {
  const random = options.random ?? Math.random;
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const nominal = Math.min(options.maxMs, options.baseMs * 2 ** exponent);
  return Math.round(nominal / 2 + random() * (nominal / 2));
}
