import { createHash, randomUUID } from "node:crypto";
import {
  type BlobInfo,
  type BlobStore,
  checkSignedUrlTtl,
  isBlobNotFoundError,
} from "../object-store/blob-store.js";
import { PromptStoreError } from "./prompt-errors.js";
import {
  assertDigest,
  digestOfMetadataKey,
  PROMPT_PREFIX,
  promptBlobKey,
  promptMetadataKey,
  STAGING_PREFIX,
} from "./prompt-keys.js";

/** What describes a prompt, given at upload. */
export interface PromptMetadata {
  /** Name for people. */
  name: string;
  /** Transcript of the reference audio the prompt was made from. */
  referenceText: string;
  /** Model family that made the prompt (a prompt works only on it), e.g. `qwen3-tts`. */
  modelFamily: string;
  /** Model size within the family, e.g. `1.7b`; empty when not meaningful. */
  modelSize: string;
  /** Engine that made the prompt. */
  engine: string;
  /** MIME type of the prompt bytes. @default "application/octet-stream" */
  contentType: string;
  /** Caller-chosen key/values. */
  tags: Record<string, string>;
}

/** A stored prompt. */
export interface PromptRecord {
  /** Lowercase hex sha256 of the bytes: the prompt's id. */
  digest: string;
  /** Size in bytes. */
  sizeBytes: number;
  /** Metadata of the first upload. */
  metadata: PromptMetadata;
  /** When the prompt was first stored. */
  createTime: Date;
}

/** Options of {@link createPromptStore}. */
export interface PromptStoreOptions {
  /** Where bytes and metadata live. */
  blobs: BlobStore;
  /** Largest prompt, in bytes (setting `maxPromptBytes`, `VOXGATE_MAX_PROMPT_BYTES`). */
  maxPromptBytes: number;
  /**
   * Largest metadata (its JSON), in bytes (setting `maxPromptMetadataBytes`,
   * `VOXGATE_MAX_PROMPT_METADATA_BYTES`).
   */
  maxMetadataBytes: number;
}

/** Options of {@link PromptStore.list}. */
export interface PromptListOptions {
  /** Most prompts to return (already resolved by the caller, e.g. `pageSizeOf`). */
  pageSize: number;
  /** Token from a previous page; empty for the first. */
  pageToken?: string;
  /** Only prompts made by this model family; empty for all. */
  modelFamily?: string;
}

/** Clone prompts, content-addressed by sha256, on top of a {@link BlobStore}. */
export interface PromptStore {
  /**
   * Stores the bytes of `body` under their sha256. Refuses (too-large) as soon as more than
   * `maxPromptBytes` arrived, without holding the upload in memory. Storing bytes already stored
   * is a no-op that returns the existing prompt with `created: false`.
   */
  put(
    body: AsyncIterable<Uint8Array>,
    metadata: PromptMetadata,
    options?: { signal?: AbortSignal },
  ): Promise<{ prompt: PromptRecord; created: boolean }>;
  /**
   * Streams a prompt. The bytes are hashed as they pass; if they do not match the digest (or the
   * recorded size), the stream fails with data-loss at the end, or as soon as it runs long.
   */
  get(
    digest: string,
    options?: { signal?: AbortSignal },
  ): Promise<{ prompt: PromptRecord; chunks: AsyncIterable<Uint8Array> }>;
  /** Describes a prompt; undefined when it does not exist. */
  stat(digest: string): Promise<PromptRecord | undefined>;
  /** Lists prompts in digest order, one page at a time. */
  list(options: PromptListOptions): Promise<{ prompts: PromptRecord[]; nextPageToken: string }>;
  /** Deletes a prompt's bytes and metadata; false when it did not exist. */
  delete(digest: string): Promise<boolean>;
  /** A URL to GET the prompt bytes from without credentials, valid for `ttlMs` (one hour at most). */
  signedReadUrl(digest: string, ttlMs: number): Promise<string>;
}

interface StoredMetadata {
  digest: string;
  sizeBytes: number;
  createTime: string;
  metadata: PromptMetadata;
}

const CONTENT_TYPE = /^[a-z]+\/[a-z0-9.+-]{1,100}$/;
const TAG_KEY = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/** Creates the prompt store. */
export function createPromptStore(options: PromptStoreOptions): PromptStore {
  const { blobs, maxPromptBytes, maxMetadataBytes } = options;

  function checkMetadata(metadata: PromptMetadata): PromptMetadata {
    const m: PromptMetadata = {
      ...metadata,
      contentType: metadata.contentType || "application/octet-stream",
      tags: { ...metadata.tags },
    };
    if (!CONTENT_TYPE.test(m.contentType)) {
      throw new PromptStoreError(
        "invalid-argument",
        "content_type must be a MIME type like audio/wav",
      );
    }
    for (const key of Object.keys(m.tags)) {
      if (!TAG_KEY.test(key)) {
        throw new PromptStoreError(
          "invalid-argument",
          `tag key ${JSON.stringify(key.slice(0, 64))} must match [a-z0-9][a-z0-9_.-]{0,62}`,
        );
      }
    }
    const bytes = Buffer.byteLength(JSON.stringify(m));
    if (bytes > maxMetadataBytes) {
      throw new PromptStoreError(
        "too-large",
        `prompt metadata is ${bytes} bytes; the limit is ${maxMetadataBytes} (maxPromptMetadataBytes, VOXGATE_MAX_PROMPT_METADATA_BYTES)`,
      );
    }
    return m;
  }

  async function readMetadata(digest: string): Promise<PromptRecord | undefined> {
    let chunks: AsyncIterable<Uint8Array>;
    try {
      chunks = await blobs.get(promptMetadataKey(digest));
    } catch (err) {
      if (isBlobNotFoundError(err)) return undefined;
      throw err;
    }
    const parts: Buffer[] = [];
    let size = 0;
    // Bounded: metadata we wrote is never larger, so more means someone else wrote it.
    for await (const chunk of chunks) {
      size += chunk.byteLength;
      if (size > maxMetadataBytes + 4096) {
        throw new PromptStoreError("data-loss", `metadata of prompt ${digest} is corrupt`);
      }
      parts.push(Buffer.from(chunk));
    }
    let stored: StoredMetadata;
    try {
      stored = JSON.parse(Buffer.concat(parts).toString("utf8")) as StoredMetadata;
    } catch (err) {
      throw new PromptStoreError("data-loss", `metadata of prompt ${digest} is corrupt`, {
        cause: err,
      });
    }
    if (stored.digest !== digest || typeof stored.sizeBytes !== "number") {
      throw new PromptStoreError("data-loss", `metadata of prompt ${digest} is corrupt`);
    }
    return {
      digest,
      sizeBytes: stored.sizeBytes,
      metadata: stored.metadata,
      createTime: new Date(stored.createTime),
    };
  }

  async function copyBlob(from: string, to: string, contentType: string): Promise<BlobInfo> {
    if (blobs.copy) return blobs.copy(from, to);
    return blobs.put(to, await blobs.get(from), { contentType });
  }

  return {
    async put(body, metadata, putOptions) {
      const checked = checkMetadata(metadata);
      const hash = createHash("sha256");
      let size = 0;
      async function* counted(): AsyncGenerator<Uint8Array> {
        for await (const chunk of body) {
          size += chunk.byteLength;
          if (size > maxPromptBytes) {
            throw new PromptStoreError(
              "too-large",
              `prompt is larger than ${maxPromptBytes} bytes (maxPromptBytes, VOXGATE_MAX_PROMPT_BYTES)`,
            );
          }
          hash.update(chunk);
          yield chunk;
        }
      }
      const stagingKey = `${STAGING_PREFIX}${randomUUID()}`;
      try {
        await blobs.put(stagingKey, counted(), {
          contentType: checked.contentType,
          ...(putOptions?.signal ? { signal: putOptions.signal } : {}),
        });
        if (size === 0) throw new PromptStoreError("invalid-argument", "prompt has no bytes");
        const digest = hash.digest("hex");
        const existing = await readMetadata(digest);
        if (existing) return { prompt: existing, created: false };
        await copyBlob(stagingKey, promptBlobKey(digest), checked.contentType);
        const record: PromptRecord = {
          digest,
          sizeBytes: size,
          metadata: checked,
          createTime: new Date(),
        };
        const stored: StoredMetadata = {
          digest,
          sizeBytes: size,
          createTime: record.createTime.toISOString(),
          metadata: checked,
        };
        // The metadata is written last: its presence is what makes the prompt exist.
        await blobs.put(promptMetadataKey(digest), Buffer.from(JSON.stringify(stored)), {
          contentType: "application/json",
        });
        return { prompt: record, created: true };
      } finally {
        await blobs.delete(stagingKey).catch(() => false);
      }
    },

    async get(digest, getOptions) {
      assertDigest(digest);
      const prompt = await readMetadata(digest);
      if (!prompt) throw new PromptStoreError("not-found", `prompt ${digest} does not exist`);
      let source: AsyncIterable<Uint8Array>;
      try {
        source = await blobs.get(
          promptBlobKey(digest),
          getOptions?.signal ? { signal: getOptions.signal } : {},
        );
      } catch (err) {
        if (isBlobNotFoundError(err)) {
          throw new PromptStoreError("data-loss", `bytes of prompt ${digest} are missing`, {
            cause: err,
          });
        }
        throw err;
      }
      const expectedBytes = prompt.sizeBytes;
      async function* verified(): AsyncGenerator<Uint8Array> {
        const hash = createHash("sha256");
        let size = 0;
        for await (const chunk of source) {
          size += chunk.byteLength;
          // Longer than recorded: stop at once rather than stream a tampered tail.
          if (size > expectedBytes) break;
          hash.update(chunk);
          yield chunk;
        }
        if (size !== expectedBytes || hash.digest("hex") !== digest) {
          throw new PromptStoreError(
            "data-loss",
            `stored bytes of prompt ${digest} do not match its sha256`,
          );
        }
      }
      return { prompt, chunks: verified() };
    },

    async stat(digest) {
      assertDigest(digest);
      return readMetadata(digest);
    },

    async list(listOptions) {
      let after = "";
      if (listOptions.pageToken)
        after = promptMetadataKey(decodePromptPageToken(listOptions.pageToken));
      const prompts: PromptRecord[] = [];
      const family = listOptions.modelFamily ?? "";
      let more = true;
      while (prompts.length < listOptions.pageSize && more) {
        const page = await blobs.list(PROMPT_PREFIX, {
          pageSize: 2 * (listOptions.pageSize - prompts.length) + 2,
          ...(after ? { startAfter: after } : {}),
        });
        more = page.nextPageToken !== "";
        const digests = page.items
          .map((item) => digestOfMetadataKey(item.key))
          .filter((d): d is string => d !== undefined);
        const last = page.items.at(-1);
        if (last) after = last.key;
        const records = await Promise.all(digests.map((d) => readMetadata(d)));
        for (const record of records) {
          if (!record || (family && record.metadata.modelFamily !== family)) continue;
          prompts.push(record);
          if (prompts.length === listOptions.pageSize) {
            more ||= record !== records.at(-1);
            after = promptMetadataKey(record.digest);
            break;
          }
        }
      }
      const lastPrompt = prompts.at(-1);
      return {
        prompts,
        nextPageToken:
          more && lastPrompt && prompts.length === listOptions.pageSize
            ? encodePromptPageToken(lastPrompt.digest)
            : "",
      };
    },

    async delete(digest) {
      assertDigest(digest);
      const existed = await blobs.delete(promptMetadataKey(digest));
      // Bytes without metadata are an unfinished upload's leftovers: removed either way.
      await blobs.delete(promptBlobKey(digest));
      return existed;
    },

    async signedReadUrl(digest, ttlMs) {
      assertDigest(digest);
      try {
        checkSignedUrlTtl(ttlMs);
      } catch (err) {
        throw new PromptStoreError("invalid-argument", (err as Error).message, { cause: err });
      }
      if (!(await readMetadata(digest))) {
        throw new PromptStoreError("not-found", `prompt ${digest} does not exist`);
      }
      return blobs.signedReadUrl(promptBlobKey(digest), ttlMs);
    },
  };
}

/** The page token of a prompt list whose last prompt is `lastDigest`. */
export function encodePromptPageToken(lastDigest: string): string {
  return Buffer.from(JSON.stringify({ a: lastDigest })).toString("base64url");
}

/**
 * The last digest of a page token from {@link encodePromptPageToken}.
 * @throws PromptStoreError invalid-argument for a token this server did not issue.
 */
export function decodePromptPageToken(token: string): string {
  try {
    const value = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { a?: unknown };
    if (typeof value.a === "string" && /^[0-9a-f]{64}$/.test(value.a)) return value.a;
  } catch {
    // fall through to the error below
  }
  throw new PromptStoreError("invalid-argument", "page_token is not one this server issued");
}
