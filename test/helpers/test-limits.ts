import type { GatewayOptions } from "../../services/gateway/index.js";

/**
 * Request limits of the in-process test gateways: generous enough for every test's audio,
 * small enough that a runaway test fails fast.
 */
export const kTestGatewayLimits = {
  maxTextChars: 5000,
  maxRequestBytes: 1024 * 1024,
  maxClipBytes: 16 * 1024 * 1024,
  defaultTimeoutMs: 30_000,
  maxTimeoutMs: 60_000,
} as const satisfies GatewayOptions["limits"];
