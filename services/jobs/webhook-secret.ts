import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Options of {@link loadWebhookSecret}. */
export interface WebhookSecretOptions {
  /** The configured secret (VOXGATE_WEBHOOK_SECRET); empty means generate or reuse one. */
  configured: string;
  /** Gateway data directory; a generated secret is kept in `<dataDir>/webhook-secret`. */
  dataDir: string;
}

/**
 * Returns the webhook signing secret: the configured one, else the one kept under the data
 * directory, else a new 256-bit one written there (mode 0600) so receivers keep verifying after a
 * restart. Gateways sharing a database must share a configured secret.
 */
export async function loadWebhookSecret(options: WebhookSecretOptions): Promise<string> {
  if (options.configured) return options.configured;
  const path = join(options.dataDir, "webhook-secret");
  try {
    const kept = (await readFile(path, "utf8")).trim();
    if (kept) return kept;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await mkdir(options.dataDir, { recursive: true });
  const secret = randomBytes(32).toString("hex");
  try {
    // `wx`: when two processes race, one writes and the other reads the winner's secret.
    await writeFile(path, `${secret}\n`, { mode: 0o600, flag: "wx" });
    return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return (await readFile(path, "utf8")).trim();
  }
}
