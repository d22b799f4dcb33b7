import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, stat, unlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Logger } from "pino";

const DIGEST = /^[0-9a-f]{64}$/;
const TEMP_PREFIX = ".tmp-";
/**
 * Bytes hashed or read per event-loop turn: hashing 50 MB in one go blocks the loop for 100 ms
 * and more here, which would stall other calls' audio and the heartbeats.
 */
const SLICE_BYTES = 1024 * 1024;

/** Options of {@link createPromptCache}. */
export interface PromptCacheOptions {
  /** Directory holding one file per prompt, named by its digest; created on the first write. */
  dir: string;
  /**
   * Most bytes the cache keeps on disk (`VOXGATE_AGENT_PROMPT_CACHE_BYTES`); the least recently
   * used prompts are evicted past it, and a prompt larger than this is used but never kept.
   */
  maxBytes: number;
  /** Logger. */
  log: Logger;
}

/**
 * A bounded on-disk LRU cache of clone prompts by sha256 digest, on an agent.
 *
 * Nothing enters it unverified and nothing leaves it unverified: {@link put} hashes the bytes, and
 * every read hashes the file again, dropping it when it no longer matches (a corrupted file is
 * never served). Files are written to a temp name and renamed, so a crash leaves no half prompt
 * under a digest's name. Recency survives restarts: each use sets the file's mtime, and
 * {@link open} rebuilds the index from a directory scan.
 */
export interface PromptCache {
  /** The cache directory. */
  readonly dir: string;
  /** Most bytes kept. */
  readonly maxBytes: number;
  /** Bytes held now. */
  readonly sizeBytes: number;
  /** Scans the directory (after a restart), removes stale temp files and evicts past the limit. */
  open(): Promise<void>;
  /** Whether the index lists `digest` (the file is still checked when read). */
  has(digest: string): boolean;
  /** Reads and verifies a prompt; undefined when absent or corrupted (then it is dropped). */
  get(digest: string): Promise<Uint8Array | undefined>;
  /**
   * Stores `bytes` under `digest` after checking they hash to it (throws otherwise), then evicts
   * the least recently used prompts past {@link maxBytes}. Disk errors are logged, not thrown:
   * the cache only saves work.
   */
  put(digest: string, bytes: Uint8Array): Promise<void>;
  /**
   * Returns the prompt from the cache or from `load`, which runs at most once at a time per digest:
   * concurrent callers share one load; if it fails, the next waiting caller tries its own. What
   * `load` returns goes to the caller at once and is verified and cached in the background
   * (`load` must verify what it returns itself, as the call's prompt channel does).
   */
  getOrLoad(digest: string, load: () => Promise<Uint8Array>): Promise<Uint8Array>;
  /** Digests held, most recently used first, at most `limit` of them. */
  digests(limit: number): string[];
  /** Resolves when the background writes {@link getOrLoad} started have finished. */
  idle(): Promise<void>;
}

interface Entry {
  sizeBytes: number;
  lastUsedMs: number;
}

/** Raised by {@link PromptCache.put} when bytes do not hash to their digest. */
export class PromptDigestMismatchError extends Error {
  override name = "PromptDigestMismatchError";
}

/** Lowercase hex sha256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Like {@link sha256Hex}, one slice per event-loop turn, so large prompts never block the loop. */
async function sha256HexSliced(bytes: Uint8Array): Promise<string> {
  const hash = createHash("sha256");
  for (let offset = 0; offset < bytes.byteLength; offset += SLICE_BYTES) {
    if (offset > 0) await nextTurn();
    hash.update(bytes.subarray(offset, offset + SLICE_BYTES));
  }
  return hash.digest("hex");
}

/** Reads a whole file in slices, hashing as it goes; undefined when it is not `sizeBytes` long. */
async function readHashed(
  path: string,
  sizeBytes: number,
): Promise<{ bytes: Buffer; digest: string } | undefined> {
  const handle = await open(path, "r");
  try {
    if ((await handle.stat()).size !== sizeBytes) return undefined;
    const bytes = Buffer.allocUnsafe(sizeBytes);
    const hash = createHash("sha256");
    let offset = 0;
    while (offset < sizeBytes) {
      const length = Math.min(SLICE_BYTES, sizeBytes - offset);
      const { bytesRead } = await handle.read(bytes, offset, length, offset);
      if (bytesRead === 0) return undefined;
      hash.update(bytes.subarray(offset, offset + bytesRead));
      offset += bytesRead;
    }
    return { bytes, digest: hash.digest("hex") };
  } finally {
    await handle.close();
  }
}

/** Creates a prompt cache over `options.dir`; call {@link PromptCache.open} before use. */
export function createPromptCache(options: PromptCacheOptions): PromptCache {
  const { dir } = options;
  const { maxBytes } = options;
  const log = options.log.child({ component: "prompt-cache" });
  const entries = new Map<string, Entry>();
  const loading = new Map<string, Promise<Uint8Array>>();
  const writes = new Set<Promise<void>>();
  let sizeBytes = 0;
  let opened: Promise<void> | undefined;
  let lastStamp = 0;
  // Strictly increasing, so two uses within one millisecond still have an order.
  const stamp = () => {
    lastStamp = Math.max(Date.now(), lastStamp + 0.001);
    return lastStamp;
  };

  const pathOf = (digest: string) => {
    // The only way a name reaches the file system: 64 hex digits cannot climb out of `dir`.
    if (!DIGEST.test(digest)) throw new Error(`not a sha256 digest: ${JSON.stringify(digest)}`);
    return join(dir, digest);
  };

  const forget = (digest: string) => {
    const entry = entries.get(digest);
    if (!entry) return;
    entries.delete(digest);
    sizeBytes -= entry.sizeBytes;
  };

  const remove = async (digest: string) => {
    forget(digest);
    await unlink(pathOf(digest)).catch(() => {});
  };

  const evict = async (keep?: string) => {
    while (sizeBytes > maxBytes) {
      let oldest: [string, Entry] | undefined;
      for (const item of entries) {
        if (item[0] !== keep && (!oldest || item[1].lastUsedMs < oldest[1].lastUsedMs)) {
          oldest = item;
        }
      }
      if (!oldest) return;
      log.debug({ digest: oldest[0], sizeBytes: oldest[1].sizeBytes }, "prompt evicted");
      await remove(oldest[0]);
    }
  };

  const touch = async (digest: string, entry: Entry) => {
    entry.lastUsedMs = stamp();
    const at = new Date(entry.lastUsedMs);
    // Persisted as mtime so the order survives a restart; a failure only costs recency.
    await utimes(pathOf(digest), at, at).catch(() => {});
  };

  const cache: PromptCache = {
    dir,
    maxBytes,
    get sizeBytes() {
      return sizeBytes;
    },
    open() {
      opened ??= (async () => {
        // The directory is made on the first write: an agent that never clones leaves nothing.
        const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
          if (err.code === "ENOENT") return [];
          throw err;
        });
        for (const name of names) {
          if (name.startsWith(TEMP_PREFIX)) {
            // Left by a crash between write and rename.
            await unlink(join(dir, name)).catch(() => {});
            continue;
          }
          if (!DIGEST.test(name)) continue;
          const info = await stat(join(dir, name)).catch(() => undefined);
          if (!info?.isFile()) continue;
          entries.set(name, { sizeBytes: info.size, lastUsedMs: info.mtimeMs });
          sizeBytes += info.size;
          lastStamp = Math.max(lastStamp, info.mtimeMs);
        }
        await evict();
        log.info({ dir, prompts: entries.size, sizeBytes, maxBytes }, "prompt cache opened");
      })();
      return opened;
    },
    has: (digest) => entries.has(digest),
    async get(digest) {
      const entry = entries.get(digest);
      if (!entry) return undefined;
      let read: Awaited<ReturnType<typeof readHashed>>;
      try {
        read = await readHashed(pathOf(digest), entry.sizeBytes);
      } catch {
        forget(digest);
        return undefined;
      }
      if (read?.digest !== digest) {
        log.warn({ digest }, "cached prompt is corrupted; dropped");
        await remove(digest);
        return undefined;
      }
      await touch(digest, entry);
      return read.bytes;
    },
    async put(digest, bytes) {
      const path = pathOf(digest);
      if ((await sha256HexSliced(bytes)) !== digest) {
        throw new PromptDigestMismatchError(`prompt bytes do not hash to ${digest}`);
      }
      if (entries.has(digest)) return;
      if (bytes.byteLength > maxBytes) {
        log.warn(
          { digest, sizeBytes: bytes.byteLength, maxBytes },
          "prompt larger than the whole cache (VOXGATE_AGENT_PROMPT_CACHE_BYTES); not kept",
        );
        return;
      }
      const temp = join(dir, `${TEMP_PREFIX}${digest}-${randomBytes(6).toString("hex")}`);
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        // No fsync: a torn file after a power loss fails verification on read and is refetched.
        await writeFile(temp, bytes, { flag: "wx", mode: 0o600 });
        await rename(temp, path);
      } catch (err) {
        await unlink(temp).catch(() => {});
        log.warn({ err, digest }, "could not write prompt to the cache");
        return;
      }
      forget(digest);
      entries.set(digest, { sizeBytes: bytes.byteLength, lastUsedMs: stamp() });
      sizeBytes += bytes.byteLength;
      await evict(digest);
    },
    async getOrLoad(digest, load) {
      let failed: Promise<Uint8Array> | undefined;
      for (;;) {
        const running = loading.get(digest);
        if (!running || running === failed) break;
        try {
          return await running;
        } catch {
          // Another call's load failed (its caller went away, say); try this caller's own.
          failed = running;
        }
      }
      let stored: Promise<void> = Promise.resolve();
      const task = (async () => {
        const cached = await cache.get(digest);
        if (cached) return cached;
        const bytes = await load();
        // The caller gets the bytes at once; writing the file is off its path. Callers joining
        // meanwhile still share this task, so the prompt is fetched once.
        stored = cache.put(digest, bytes).catch((err: unknown) => {
          log.warn({ err, digest }, "loaded prompt was not cached");
        });
        const write = stored.finally(() => writes.delete(write));
        writes.add(write);
        return bytes;
      })();
      loading.set(digest, task);
      const forgetTask = () => {
        if (loading.get(digest) === task) loading.delete(digest);
      };
      try {
        const bytes = await task;
        void stored.finally(forgetTask);
        return bytes;
      } catch (err) {
        forgetTask();
        throw err;
      }
    },
    async idle() {
      while (writes.size > 0) await Promise.all([...writes]);
    },
    digests(limit) {
      return [...entries]
        .sort((a, b) => b[1].lastUsedMs - a[1].lastUsedMs)
        .slice(0, Math.max(0, limit))
        .map(([digest]) => digest);
    },
  };
  return cache;
}
