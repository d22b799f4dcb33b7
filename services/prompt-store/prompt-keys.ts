import { PromptStoreError } from "./prompt-errors.js";

const DIGEST = /^[0-9a-f]{64}$/;

/** Key prefix of all stored prompts. */
export const PROMPT_PREFIX = "prompts/sha256/";
/** Key prefix of uploads still being received and hashed. */
export const STAGING_PREFIX = "prompts/staging/";

/**
 * Checks a caller-given digest: exactly 64 lowercase hex characters. Nothing else ever reaches
 * a key, so `../../etc/passwd` is refused here, before any store sees it.
 * @throws PromptStoreError invalid-argument otherwise.
 */
export function assertDigest(digest: string): void {
  if (!DIGEST.test(digest)) {
    throw new PromptStoreError(
      "invalid-argument",
      "digest must be the 64 lowercase hex characters of a sha256",
    );
  }
}

/** Key of a prompt's bytes: `prompts/sha256/<first 2 hex>/<digest>`. */
export function promptBlobKey(digest: string): string {
  assertDigest(digest);
  return `${PROMPT_PREFIX}${digest.slice(0, 2)}/${digest}`;
}

/** Key of a prompt's metadata, a JSON object beside its bytes: `<blob key>.json`. */
export function promptMetadataKey(digest: string): string {
  return `${promptBlobKey(digest)}.json`;
}

/** The digest a metadata key names, or undefined for any other key. */
export function digestOfMetadataKey(key: string): string | undefined {
  const match = /^prompts\/sha256\/[0-9a-f]{2}\/([0-9a-f]{64})\.json$/.exec(key);
  return match?.[1];
}
