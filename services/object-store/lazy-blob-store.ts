import type { BlobStore } from "./blob-store.js";

/**
 * A store whose implementation is loaded on first use. The S3 and GCS client libraries cost about
 * 25–30 MB of memory each and a noticeable start-up delay, so a gateway imports only the one it
 * is configured with, and only when it first touches the store. A failed load is retried on the
 * next call (the error reaches the caller that triggered it).
 */
export function createLazyBlobStore(kind: "s3" | "gcs", load: () => Promise<BlobStore>): BlobStore {
  let loading: Promise<BlobStore> | undefined;
  let loaded: BlobStore | undefined;
  const store = (): Promise<BlobStore> => {
    loading ??= load().then(
      (s) => {
        loaded = s;
        return s;
      },
      (err: unknown) => {
        loading = undefined;
        throw err;
      },
    );
    return loading;
  };
  return {
    kind,
    put: async (key, body, options) => (await store()).put(key, body, options),
    get: async (key, options) => (await store()).get(key, options),
    stat: async (key) => (await store()).stat(key),
    list: async (prefix, options) => (await store()).list(prefix, options),
    delete: async (key) => (await store()).delete(key),
    // Both providers copy server-side; the check keeps any future store without copy honest.
    copy: async (sourceKey, destinationKey) => {
      const s = await store();
      if (!s.copy) throw new Error(`the ${kind} store cannot copy objects`);
      return s.copy(sourceKey, destinationKey);
    },
    signedReadUrl: async (key, ttlMs) => (await store()).signedReadUrl(key, ttlMs),
    // Nothing to close when it was never opened.
    close: async () => loaded?.close(),
  };
}
