import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  assertBlobKey,
  assertBlobPrefix,
  type BlobInfo,
  BlobNotFoundError,
  type BlobStore,
} from "./blob-store.js";
import type { BlobUrlSigner } from "./blob-url-signer.js";
import { decodeListToken, encodeListToken } from "./list-token.js";

/** Options of {@link createFsBlobStore}. */
export interface FsBlobStoreOptions {
  /** Directory holding the store (created when missing): `data/`, `meta/` and `tmp/` inside. */
  rootDir: string;
  /** Signs read URLs (served by `createSignedBlobFrontend`); without it `signedReadUrl` throws. */
  urlSigner?: BlobUrlSigner;
}

interface Sidecar {
  contentType: string;
  metadata: Record<string, string>;
  createTime: string;
}

const DEFAULT_LIST_PAGE = 1000;

/**
 * Creates the filesystem object store, the embedded default. Each object is a file under
 * `data/<key>` with a JSON sidecar under `meta/<key>`; writes go to `tmp/` and are renamed into
 * place, so a reader never sees half an object. Keys are validated ({@link assertBlobKey}), so a
 * key can never leave the root.
 */
export function createFsBlobStore(options: FsBlobStoreOptions): BlobStore {
  const dataDir = join(options.rootDir, "data");
  const metaDir = join(options.rootDir, "meta");
  const tmpDir = join(options.rootDir, "tmp");
  const dataPath = (key: string) => join(dataDir, ...key.split("/"));
  const metaPath = (key: string) => join(metaDir, ...key.split("/"));

  async function readSidecar(key: string): Promise<Sidecar | undefined> {
    try {
      return JSON.parse(await readFile(metaPath(key), "utf8")) as Sidecar;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async function info(key: string): Promise<BlobInfo | undefined> {
    let size: number;
    let mtime: Date;
    try {
      const stats = await stat(dataPath(key));
      if (!stats.isFile()) return undefined;
      size = stats.size;
      mtime = stats.mtime;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    const sidecar = await readSidecar(key);
    return {
      key,
      sizeBytes: size,
      contentType: sidecar?.contentType ?? "application/octet-stream",
      metadata: sidecar?.metadata ?? {},
      createTime: sidecar ? new Date(sidecar.createTime) : mtime,
    };
  }

  /** Moves finished temp files into place: the sidecar first, the data last (the commit). */
  async function commit(key: string, dataTmp: string, sidecar: Sidecar): Promise<void> {
    const metaTmp = join(tmpDir, `${randomUUID()}.json`);
    try {
      await writeFile(metaTmp, JSON.stringify(sidecar));
      await mkdir(dirname(metaPath(key)), { recursive: true });
      await mkdir(dirname(dataPath(key)), { recursive: true });
      await rename(metaTmp, metaPath(key));
    } catch (err) {
      // A full disk leaves the sidecar created but empty: never leave it behind.
      await rm(metaTmp, { force: true });
      throw err;
    }
    await rename(dataTmp, dataPath(key));
  }

  async function walk(dir: string, out: string[]): Promise<void> {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path, out);
      else if (entry.isFile()) out.push(relative(dataDir, path).split(sep).join("/"));
    }
  }

  return {
    kind: "filesystem",

    async put(key, body, putOptions) {
      assertBlobKey(key);
      await mkdir(tmpDir, { recursive: true });
      const dataTmp = join(tmpDir, randomUUID());
      try {
        const source = body instanceof Uint8Array ? Readable.from([body]) : Readable.from(body);
        await pipeline(
          source,
          createWriteStream(dataTmp),
          putOptions.signal ? { signal: putOptions.signal } : {},
        );
        const sidecar: Sidecar = {
          contentType: putOptions.contentType,
          metadata: { ...putOptions.metadata },
          createTime: new Date().toISOString(),
        };
        await commit(key, dataTmp, sidecar);
      } catch (err) {
        await rm(dataTmp, { force: true });
        throw err;
      }
      const written = await info(key);
      if (!written) throw new BlobNotFoundError(key);
      return written;
    },

    async get(key, getOptions) {
      assertBlobKey(key);
      const found = await info(key);
      if (!found) throw new BlobNotFoundError(key);
      const range = getOptions?.range;
      if (range && (range.end <= range.start || range.start >= found.sizeBytes)) {
        return Readable.from([]);
      }
      return createReadStream(dataPath(key), {
        ...(range ? { start: range.start, end: Math.min(range.end, found.sizeBytes) - 1 } : {}),
        ...(getOptions?.signal ? { signal: getOptions.signal } : {}),
      });
    },

    async stat(key) {
      assertBlobKey(key);
      return info(key);
    },

    async list(prefix, listOptions) {
      assertBlobPrefix(prefix);
      const pageSize = listOptions?.pageSize ?? DEFAULT_LIST_PAGE;
      const after = listOptions?.pageToken
        ? decodeListToken(listOptions.pageToken)
        : (listOptions?.startAfter ?? "");
      // Only the deepest directory the prefix names needs walking.
      const slash = prefix.lastIndexOf("/");
      const keys: string[] = [];
      await walk(slash >= 0 ? dataPath(prefix.slice(0, slash)) : dataDir, keys);
      const matching = keys.filter((k) => k.startsWith(prefix) && k > after).sort();
      const page = matching.slice(0, pageSize);
      const items: BlobInfo[] = [];
      for (const key of page) {
        const found = await info(key);
        if (found) items.push(found);
      }
      const last = page.at(-1);
      return {
        items,
        nextPageToken: matching.length > pageSize && last ? encodeListToken(last) : "",
      };
    },

    async delete(key) {
      assertBlobKey(key);
      const existed = (await info(key)) !== undefined;
      // Data first: once it is gone the object is gone, even if removing the sidecar fails.
      await rm(dataPath(key), { force: true });
      await rm(metaPath(key), { force: true });
      return existed;
    },

    async copy(sourceKey, destinationKey) {
      assertBlobKey(sourceKey);
      assertBlobKey(destinationKey);
      const source = await info(sourceKey);
      if (!source) throw new BlobNotFoundError(sourceKey);
      await mkdir(tmpDir, { recursive: true });
      const dataTmp = join(tmpDir, randomUUID());
      try {
        await copyFile(dataPath(sourceKey), dataTmp);
        await commit(destinationKey, dataTmp, {
          contentType: source.contentType,
          metadata: source.metadata,
          createTime: new Date().toISOString(),
        });
      } catch (err) {
        await rm(dataTmp, { force: true });
        throw err;
      }
      const written = await info(destinationKey);
      if (!written) throw new BlobNotFoundError(destinationKey);
      return written;
    },

    async signedReadUrl(key, ttlMs) {
      assertBlobKey(key);
      if (!options.urlSigner) {
        throw new Error("this filesystem store has no URL signer (set urlSigner)");
      }
      return options.urlSigner.sign(key, ttlMs);
    },

    async close() {},
  };
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}
