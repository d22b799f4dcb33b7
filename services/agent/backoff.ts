/** Reconnect backoff settings. */
export interface BackoffOptions {
  /** Delay cap before jitter for the first retry, in ms. @default 250 */
  initialDelayMs: number;
  /** Largest delay, in ms. @default 10_000 */
  maxDelayMs: number;
  /** Growth per attempt. @default 2 */
  multiplier: number;
}

/** Defaults of {@link BackoffOptions}. */
export const defaultBackoff: BackoffOptions = {
  initialDelayMs: 250,
  maxDelayMs: 10_000,
  multiplier: 2,
};

/**
 * Delay before reconnect attempt `attempt` (0-based): capped exponential growth with full jitter,
 * so a fleet of agents that lost the same gateway does not reconnect in lockstep.
 * `random` returns a number in [0, 1); injectable for tests.
 */
export function backoffDelayMs(
  attempt: number,
  options: BackoffOptions = defaultBackoff,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(
    options.maxDelayMs,
    options.initialDelayMs * options.multiplier ** Math.max(0, attempt),
  );
  return Math.round(random() * ceiling);
}
