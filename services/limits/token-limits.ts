/**
 * Per-token resource limits (OWASP API4, unrestricted resource consumption), as written on a token
 * entry of the config. A missing or 0 limit is no limit.
 */
export interface TokenLimits {
  /** Calls of this token running at once, over every gateway replica. */
  maxConcurrentCalls?: number | undefined;
  /** Calls of this token started per minute (fixed UTC minute windows), over every replica. */
  maxRequestsPerMinute?: number | undefined;
  /** Characters of text this token may have synthesized per UTC day, over every replica. */
  maxCharsPerDay?: number | undefined;
}

/** The kinds of counted usage, as stored. */
export type UsageKind = "requests-minute" | "chars-day";

/** Length of each counting window, in ms. */
export const kWindowMs: Readonly<Record<UsageKind, number>> = {
  "requests-minute": 60_000,
  "chars-day": 86_400_000,
};

/** Returns whether `limits` sets any limit. */
export function hasLimits(limits: TokenLimits | undefined): limits is TokenLimits {
  return Boolean(
    limits &&
      ((limits.maxConcurrentCalls ?? 0) > 0 ||
        (limits.maxRequestsPerMinute ?? 0) > 0 ||
        (limits.maxCharsPerDay ?? 0) > 0),
  );
}
