/**
 * The object-storage seam: the few operations voxgate needs from a bucket, bound to one vendor SDK
 * per adapter (filesystem, S3-compatible, GCS). Prompts, reference audio and job outputs all live
 * behind it; only the gateway holds the credentials.
 *
 * Keys are built by voxgate (see `blobKey`), never taken from callers.
 */

/** What a store knows about one object. */
export interface BlobInfo {
  /** Object key, e.g. `prompts/sha256/ab/ab12….bin`. */
  key: string;
  /** Size in bytes. */
  sizeBytes: number;
  /** MIME type given at put. */
  contentType: string;
  /** Small string metadata given at put (keys lowercase `[a-z0-9-]`). */
  metadata: Record<string, string>;
  /** When the object was written. */
  createTime: Date;
}

/** Options of {@link BlobStore.put}. */
export interface BlobPutOptions {
  /** MIME type stored with the object. */
  contentType: string;
  /** Small string metadata stored with the object. */
  metadata?: Record<string, string>;
  /** Stops the upload; a partial object is never left visible. */
  signal?: AbortSignal;
}

/** Options of {@link BlobStore.get}. */
export interface BlobGetOptions {
  /** Stops the download. */
  signal?: AbortSignal;
  /** Byte range, `end` exclusive; the whole object when absent. */
  range?: { start: number; end: number };
}

/** Options of {@link BlobStore.list}. */
export interface BlobListOptions {
  /** Most objects to return. @default 1000 */
  pageSize?: number;
  /** Token from a previous page's `nextPageToken`. */
  pageToken?: string;
  /** Returns only keys sorting after this one (resume after a known key). */
  startAfter?: string;
}

/** One page of {@link BlobStore.list}. */
export interface BlobPage {
  /**
   * Objects in key order. Stores that list without object metadata (S3) leave `contentType` empty
   * and `metadata` empty here; call `stat` for them.
   */
  items: BlobInfo[];
  /** Opaque token of the next page; empty on the last page. */
  nextPageToken: string;
}

/**
 * An object store. Writes are all-or-nothing: a reader sees the whole object or none. Putting an
 * existing key replaces it.
 */
export interface BlobStore {
  /** Which adapter this is. */
  readonly kind: "filesystem" | "s3" | "gcs";
  /** Writes `body` under `key`. */
  put(
    key: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    options: BlobPutOptions,
  ): Promise<BlobInfo>;
  /** Streams an object; throws `BlobNotFoundError` when the key does not exist. */
  get(key: string, options?: BlobGetOptions): Promise<AsyncIterable<Uint8Array>>;
  /** Describes an object; `undefined` when it does not exist. */
  stat(key: string): Promise<BlobInfo | undefined>;
  /** Lists objects whose key starts with `prefix`. */
  list(prefix: string, options?: BlobListOptions): Promise<BlobPage>;
  /** Deletes an object; resolves `false` when it did not exist. */
  delete(key: string): Promise<boolean>;
  /**
   * Copies an object inside the store without the bytes passing through voxgate (S3 CopyObject,
   * GCS rewrite, a file copy); throws `BlobNotFoundError` when `sourceKey` does not exist. Optional
   * so simple fakes need not implement it; callers fall back to get + put.
   */
  copy?(sourceKey: string, destinationKey: string): Promise<BlobInfo>;
  /**
   * A URL anyone holding it may GET the object from until `ttlMs` passes (at most one hour): S3
   * presign, GCS v4 signature, or a gateway-signed URL for the filesystem store. Throws
   * `BlobUrlTtlError` for a ttl outside 1 s … {@link MAX_SIGNED_URL_TTL_MS}.
   */
  signedReadUrl(key: string, ttlMs: number): Promise<string>;
  /** Releases clients; idempotent. */
  close(): Promise<void>;
}

/** Longest lifetime of a signed read URL: one hour, in ms. */
export const MAX_SIGNED_URL_TTL_MS = 3_600_000;

/** Shortest lifetime of a signed read URL: one second, in ms. */
export const MIN_SIGNED_URL_TTL_MS = 1000;

/** Raised when a key does not exist. */
export class BlobNotFoundError extends Error {
  override readonly name = "BlobNotFoundError";
  /** Creates the error for `key`. */
  constructor(
    /** The missing key. */
    readonly key: string,
    options?: ErrorOptions,
  ) {
    super(`object "${key}" does not exist`, options);
  }
}

/** Returns whether `err` is a {@link BlobNotFoundError}. */
export function isBlobNotFoundError(err: unknown): err is BlobNotFoundError {
  return err instanceof BlobNotFoundError;
}

/** Raised for a key that is not one voxgate builds (empty, `..`, absolute, odd characters). */
export class BlobKeyError extends Error {
  override readonly name = "BlobKeyError";
}

/** Returns whether `err` is a {@link BlobKeyError}. */
export function isBlobKeyError(err: unknown): err is BlobKeyError {
  return err instanceof BlobKeyError;
}

/** Raised for a signed URL lifetime outside {@link MIN_SIGNED_URL_TTL_MS}…{@link MAX_SIGNED_URL_TTL_MS}. */
export class BlobUrlTtlError extends RangeError {
  override readonly name = "BlobUrlTtlError";
}

/** Returns whether `err` is a {@link BlobUrlTtlError}. */
export function isBlobUrlTtlError(err: unknown): err is BlobUrlTtlError {
  return err instanceof BlobUrlTtlError;
}

/** Longest object key, in characters. */
export const MAX_BLOB_KEY_CHARS = 512;

// Segments start with a letter or digit, so `.`, `..` and hidden names can never appear, and the
// alphabet has no `\`, `%`, `:` or whitespace: a valid key is also a safe relative file path.
const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._=-]*(\/[A-Za-z0-9][A-Za-z0-9._=-]*)*$/;
const PREFIX_PATTERN = /^([A-Za-z0-9][A-Za-z0-9._=-]*(\/[A-Za-z0-9][A-Za-z0-9._=-]*)*\/?)?$/;

/**
 * Checks that `key` is an object key voxgate could have built: `/`-separated segments of
 * `[A-Za-z0-9._=-]` each starting with a letter or digit, at most {@link MAX_BLOB_KEY_CHARS}.
 * @throws BlobKeyError otherwise.
 */
export function assertBlobKey(key: string): void {
  if (key.length > MAX_BLOB_KEY_CHARS || !KEY_PATTERN.test(key)) {
    throw new BlobKeyError(`invalid object key ${JSON.stringify(key.slice(0, 80))}`);
  }
}

/**
 * Checks a list prefix: empty, or a key-shaped string that may end with `/`.
 * @throws BlobKeyError otherwise.
 */
export function assertBlobPrefix(prefix: string): void {
  if (prefix.length > MAX_BLOB_KEY_CHARS || !PREFIX_PATTERN.test(prefix)) {
    throw new BlobKeyError(`invalid object key prefix ${JSON.stringify(prefix.slice(0, 80))}`);
  }
}

/**
 * Checks a signed URL lifetime and returns it.
 * @throws BlobUrlTtlError when it is below one second or above one hour.
 */
export function checkSignedUrlTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs < MIN_SIGNED_URL_TTL_MS || ttlMs > MAX_SIGNED_URL_TTL_MS) {
    throw new BlobUrlTtlError(
      `signed URL lifetime ${ttlMs} ms is outside 1000…${MAX_SIGNED_URL_TTL_MS} ms (one hour at most)`,
    );
  }
  return ttlMs;
}
