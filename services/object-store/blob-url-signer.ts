import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { assertBlobKey, checkSignedUrlTtl } from "./blob-store.js";

/** Path prefix of gateway-signed blob URLs on the public port. */
export const SIGNED_BLOB_PATH_PREFIX = "/v1/blobs/";

/** Options of {@link createBlobUrlSigner}. */
export interface BlobUrlSignerOptions {
  /** HMAC-SHA256 key; at least 32 bytes. */
  secret: Uint8Array;
  /**
   * Public base URL of the gateway, e.g. `https://tts.example.com`; a function because the port
   * is known only once the gateway listens.
   */
  baseUrl: () => string;
  /** Clock, in ms since the epoch. @default Date.now */
  now?: () => number;
}

/** Makes and checks gateway-signed read URLs for the filesystem store. */
export interface BlobUrlSigner {
  /** A URL `GET {baseUrl}/v1/blobs/<key>?expires=<unix s>&signature=<hex>` valid for `ttlMs`. */
  sign(key: string, ttlMs: number): string;
  /**
   * Whether `signature` is this gateway's signature of (`key`, `expires`) and `expires` (unix
   * seconds) has not passed. Compares in constant time.
   */
  verify(key: string, expires: string, signature: string): boolean;
}

/**
 * Creates a signer of blob read URLs: HMAC-SHA256 over `key` and the expiry, so the URL itself is
 * the credential (serverless workers hold no token) and it dies after at most one hour.
 */
export function createBlobUrlSigner(options: BlobUrlSignerOptions): BlobUrlSigner {
  if (options.secret.byteLength < 32) throw new RangeError("blob URL secret must be 32+ bytes");
  const now = options.now ?? Date.now;
  const mac = (key: string, expires: string) =>
    createHmac("sha256", options.secret).update(`${key}\n${expires}`).digest();
  return {
    sign(key, ttlMs) {
      assertBlobKey(key);
      const expires = String(Math.ceil((now() + checkSignedUrlTtl(ttlMs)) / 1000));
      const base = options.baseUrl().replace(/\/+$/, "");
      const signature = mac(key, expires).toString("hex");
      return `${base}${SIGNED_BLOB_PATH_PREFIX}${key}?expires=${expires}&signature=${signature}`;
    },
    verify(key, expires, signature) {
      if (!/^\d{1,12}$/.test(expires) || !/^[0-9a-f]{64}$/.test(signature)) return false;
      if (Number(expires) * 1000 <= now()) return false;
      return timingSafeEqual(mac(key, expires), Buffer.from(signature, "hex"));
    },
  };
}

/**
 * Reads the blob URL secret from `<dataDir>/blob-url-secret`, creating it (32 random bytes, hex,
 * mode 0600) on first use, so signed URLs survive a gateway restart without configuration.
 */
export function loadOrCreateBlobUrlSecret(dataDir: string): Uint8Array {
  const path = join(dataDir, "blob-url-secret");
  try {
    const text = readFileSync(path, "utf8").trim();
    if (/^[0-9a-f]{64,}$/.test(text)) return Buffer.from(text, "hex");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const secret = randomBytes(32);
  mkdirSync(dirname(path), { recursive: true });
  // "wx" fails if another process created it meanwhile; then theirs wins and we read it.
  try {
    writeFileSync(path, `${secret.toString("hex")}\n`, { mode: 0o600, flag: "wx" });
    return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return Buffer.from(readFileSync(path, "utf8").trim(), "hex");
  }
}
