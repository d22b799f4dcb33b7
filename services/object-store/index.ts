export {
  assertBlobKey,
  assertBlobPrefix,
  type BlobGetOptions,
  type BlobInfo,
  BlobKeyError,
  type BlobListOptions,
  BlobNotFoundError,
  type BlobPage,
  type BlobPutOptions,
  type BlobStore,
  BlobUrlTtlError,
  checkSignedUrlTtl,
  isBlobKeyError,
  isBlobNotFoundError,
  isBlobUrlTtlError,
  MAX_BLOB_KEY_CHARS,
  MAX_SIGNED_URL_TTL_MS,
  MIN_SIGNED_URL_TTL_MS,
} from "./blob-store.js";
export {
  type BlobStoreConfig,
  type BlobStoreRuntime,
  type BlobStoreSettings,
  blobStoreConfigFromSettings,
  blobStoreConfigSchema,
  type CreateBlobStoreOptions,
  createBlobStore,
} from "./blob-store-config.js";
export {
  type BlobUrlSigner,
  type BlobUrlSignerOptions,
  createBlobUrlSigner,
  loadOrCreateBlobUrlSecret,
  SIGNED_BLOB_PATH_PREFIX,
} from "./blob-url-signer.js";
export { createFsBlobStore, type FsBlobStoreOptions } from "./fs-blob-store.js";
// The S3 and GCS stores are not re-exported: importing them loads their client libraries. Import
// "./s3-blob-store.js" or "./gcs-blob-store.js" directly, or go through createBlobStore.
export type { GcsBlobStoreOptions } from "./gcs-blob-store.js";
export { createLazyBlobStore } from "./lazy-blob-store.js";
export type { S3BlobStoreOptions } from "./s3-blob-store.js";
export {
  createSignedBlobFrontend,
  SIGNED_BLOB_ROUTE,
  type SignedBlobFrontendOptions,
} from "./signed-blob-frontend.js";
