/**
 * The textual form of voxgate bearer tokens: how a token is made and how the gateway stores it.
 *
 * A token is `vxg_` followed by 32 random bytes in base64url (43 characters, no padding). The
 * gateway keeps only the sha256 of a token, so its config holds nothing worth stealing.
 */
import { createHash, randomBytes } from "node:crypto";

/** Prefix of every voxgate token; makes tokens easy to spot in logs and secret scanners. */
export const TOKEN_PREFIX = "vxg_";

/** Random bytes in a token: 256 bits, so a plain sha256 of it cannot be brute-forced. */
const TOKEN_RANDOM_BYTES = 32;

/**
 * Generates a new token: {@link TOKEN_PREFIX} followed by 32 bytes from the OS CSPRNG encoded as
 * base64url without padding, 47 characters in all. Show it once; store only {@link hashToken}.
 */
export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(TOKEN_RANDOM_BYTES).toString("base64url");
}

/**
 * Returns the stored form of `token`: the lowercase hex sha256 of its UTF-8 bytes (64 characters).
 * Any string is hashed as given (prefix included); validating the format is the caller's business.
 */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}
