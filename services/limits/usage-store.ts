import type { UsageKind } from "./token-limits.js";

/** Usage one gateway counted since its last flush, for one token and window. */
export interface UsageDelta {
  /** Token name. */
  token: string;
  /** What was counted. */
  kind: UsageKind;
  /** Window index: `floor(epoch ms / window length)`. */
  window: number;
  /** Amount counted here since the last flush (may be 0: the flush then only reads). */
  delta: number;
}

/** What all gateways together used, as known after a flush. */
export interface UsageTotals {
  /** Totals of each flushed (token, kind, window), keyed `token\u0000kind\u0000window`. */
  totals: Map<string, number>;
  /** Calls running now on OTHER gateways, per token (from their recent reports). */
  othersInFlight: Map<string, number>;
}

/** Key of {@link UsageTotals.totals}. */
export function usageKey(token: string, kind: UsageKind, window: number): string {
  return `${token}\u0000${kind}\u0000${window}`;
}

/**
 * Where gateways share what their tokens used, so limits hold over every replica. Each gateway
 * adds its own counts and reads everybody's totals in one call.
 */
export interface UsageStore {
  /**
   * Adds `deltas` to the shared counters, records this gateway's calls in flight per token, and
   * returns the totals after the change plus other gateways' calls in flight.
   */
  flush(
    gatewayId: string,
    deltas: readonly UsageDelta[],
    inFlight: ReadonlyMap<string, number>,
  ): Promise<UsageTotals>;
}
