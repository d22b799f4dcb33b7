import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { BlobStore } from "../object-store/blob-store.js";

/** Reference recordings of cloned voices, content-addressed, so a voice can be analyzed later. */
export interface ReferenceAudioStore {
  /** Stores `audio` (a no-op when the same bytes are there) and resolves with its sha256. */
  put(audio: Uint8Array, contentType: string): Promise<string>;
  /**
   * Reads a recording whole (references are small: their size is capped at upload).
   * @throws ConnectError NOT_FOUND when it is gone, DATA_LOSS when its bytes no longer match.
   */
  get(digest: string, signal?: AbortSignal): Promise<Uint8Array>;
  /** Deletes a recording; missing ones are fine. */
  delete(digest: string): Promise<void>;
}

/** Object key of a reference recording; built from the digest only, never from caller input. */
export function referenceAudioKey(digest: string): string {
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new RangeError("not a sha256 digest");
  return `references/sha256/${digest.slice(0, 2)}/${digest}.bin`;
}

/** Creates the store over `blobs`. */
export function createReferenceAudioStore(blobs: BlobStore): ReferenceAudioStore {
  return {
    async put(audio, contentType) {
      const digest = createHash("sha256").update(audio).digest("hex");
      const key = referenceAudioKey(digest);
      // Same key, same bytes: a second upload of one recording costs a stat, not a write.
      if (!(await blobs.stat(key))) await blobs.put(key, audio, { contentType });
      return digest;
    },
    async get(digest, signal) {
      const key = referenceAudioKey(digest);
      if (!(await blobs.stat(key))) {
        throw new ConnectError(`reference audio ${digest} is not stored`, Code.NotFound);
      }
      const parts: Uint8Array[] = [];
      const hash = createHash("sha256");
      for await (const part of await blobs.get(key, signal ? { signal } : {})) {
        hash.update(part);
        parts.push(part);
      }
      if (hash.digest("hex") !== digest) {
        throw new ConnectError(`reference audio ${digest} is corrupt in the store`, Code.DataLoss);
      }
      return Buffer.concat(parts);
    },
    async delete(digest) {
      await blobs.delete(referenceAudioKey(digest));
    },
  };
}
