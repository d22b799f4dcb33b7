/**
 * Steps the SDK-backed stores share after a write: reading the object back, so `put` and `copy`
 * return the info the server now holds (size, type, time) rather than what was asked for.
 */
import { assertBlobKey, type BlobInfo, BlobNotFoundError } from "./blob-store.js";

/** A store's own metadata read: the info of `key`, `undefined` when it does not exist. */
export type BlobHead = (key: string) => Promise<BlobInfo | undefined>;

/**
 * Returns the info of the object just written under `key`, read through `head`. Throws
 * `BlobNotFoundError` when it is already gone (deleted by another writer in between).
 */
export async function readBack(head: BlobHead, key: string): Promise<BlobInfo> {
  const written = await head(key);
  if (!written) throw new BlobNotFoundError(key);
  return written;
}

/** Options of {@link copyAndReadBack}. */
export interface CopyAndReadBackOptions {
  /** Key of the object copied; checked with `assertBlobKey`. */
  sourceKey: string;
  /** Key the copy is written under; checked with `assertBlobKey`. */
  destinationKey: string;
  /** Makes the copy with the store's SDK. */
  copy: () => Promise<unknown>;
  /** Tells the SDK's "no such object" error from others. */
  isNotFound: (err: unknown) => boolean;
  /** The store's metadata read. */
  head: BlobHead;
}

/**
 * Implements `BlobStore.copy` over an SDK copy: validates both keys, runs `copy`, turns the SDK's
 * not-found error into `BlobNotFoundError` naming the source (keeping `cause`), and returns the
 * destination's info via {@link readBack}.
 */
export async function copyAndReadBack(options: CopyAndReadBackOptions): Promise<BlobInfo> {
  const { sourceKey, destinationKey } = options;
  assertBlobKey(sourceKey);
  assertBlobKey(destinationKey);
  try {
    await options.copy();
  } catch (err) {
    if (options.isNotFound(err)) throw new BlobNotFoundError(sourceKey, { cause: err });
    throw err;
  }
  return readBack(options.head, destinationKey);
}
