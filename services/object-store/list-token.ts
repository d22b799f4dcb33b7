import { assertBlobKey, BlobKeyError } from "./blob-store.js";

/** Opaque list page token naming the last key of the previous page. */
export function encodeListToken(lastKey: string): string {
  return Buffer.from(JSON.stringify({ k: lastKey })).toString("base64url");
}

/**
 * The last key named by a list page token.
 * @throws BlobKeyError for a token no store of ours issued.
 */
export function decodeListToken(token: string): string {
  try {
    const value = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { k?: unknown };
    if (typeof value.k === "string") {
      assertBlobKey(value.k);
      return value.k;
    }
  } catch {
    // fall through to the error below
  }
  throw new BlobKeyError("page token is not one this store issued");
}
