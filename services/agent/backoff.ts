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

/**
 * Longest time after a gateway said it is leaving (GatewayLeaving) during which the agent redials
 * at the short pace of {@link replacementRedialDelayMs} instead of backing off, in ms: a restart's
 * replacement opens its agent port within seconds (tens on a loaded machine), and a refused dial
 * costs both sides next to nothing. Then the usual backoff takes over (a gateway scaled away).
 */
export const kReplacementRedialWindowMs = 30_000;

/** Shortest delay between dials while waiting for a leaving gateway's replacement, in ms. */
export const kReplacementRedialMs = 100;

/** Jitter added to {@link kReplacementRedialMs}, in ms (small: agents should be back at once). */
export const kReplacementRedialJitterMs = 100;

/**
 * Delay before the next dial while waiting for a leaving gateway's replacement:
 * {@link kReplacementRedialMs} plus up to {@link kReplacementRedialJitterMs} of jitter, so an
 * agent is back within about 200 ms of the replacement's agent port opening.
 * `random` returns a number in [0, 1); injectable for tests.
 */
export function replacementRedialDelayMs(random: () => number = Math.random): number {
  return Math.round(kReplacementRedialMs + random() * kReplacementRedialJitterMs);
}
