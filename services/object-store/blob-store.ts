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

/** One page of {@link BlobStore.list}. */
export interface BlobPage {
  /** Objects in key order. */
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
  list(prefix: string, options?: { pageSize?: number; pageToken?: string }): Promise<BlobPage>;
  /** Deletes an object; resolves `false` when it did not exist. */
  delete(key: string): Promise<boolean>;
  /**
   * A URL anyone holding it may GET the object from until `ttlMs` passes (at most one hour): S3
   * presign, GCS v4 signature, or a gateway-signed URL for the filesystem store.
   */
  signedReadUrl(key: string, ttlMs: number): Promise<string>;
  /** Releases clients; idempotent. */
  close(): Promise<void>;
}
