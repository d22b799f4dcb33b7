import { createHmac, timingSafeEqual } from "node:crypto";

/** Header carrying a webhook's signature: `t=<unix seconds>,v1=<hex HMAC-SHA256>`. */
export const WEBHOOK_SIGNATURE_HEADER = "x-voxgate-signature";

/**
 * Signs a webhook body: HMAC-SHA256 with `secret` over `<t>.<body>`, where `t` is the send time in
 * unix seconds. Binding the time in lets receivers refuse replays of an old call.
 *
 * @returns the {@link WEBHOOK_SIGNATURE_HEADER} value, `t=<t>,v1=<hex>`.
 */
export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

/** Options of {@link verifyWebhookSignature}. */
export interface VerifyWebhookOptions {
  /** Oldest accepted signature age (either direction), in seconds. @default 300 */
  toleranceSeconds?: number;
  /** Current time in unix seconds. @default now */
  nowSeconds?: number;
}

/**
 * Checks a {@link WEBHOOK_SIGNATURE_HEADER} value against the raw body, in constant time; for
 * receivers written in TypeScript.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string,
  body: string,
  options: VerifyWebhookOptions = {},
): boolean {
  const parts = new Map(
    header.split(",").map((p) => {
      const i = p.indexOf("=");
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get("t"));
  const given = parts.get("v1") ?? "";
  if (!Number.isInteger(t) || !/^[0-9a-f]{64}$/.test(given)) return false;
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (options.toleranceSeconds ?? 300)) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(given, "hex"));
}
