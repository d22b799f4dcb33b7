import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BlobStore,
  isBlobKeyError,
  isBlobNotFoundError,
  isBlobUrlTtlError,
} from "../../services/object-store/blob-store.js";
import {
  createPromptStore,
  isPromptStoreError,
  type PromptMetadata,
  type PromptStore,
  promptBlobKey,
  promptMetadataKey,
} from "../../services/prompt-store/index.js";
import { STORE_KINDS, type StoreFixture, startStore } from "./store-fixtures.js";

const MiB = 1024 * 1024;

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function listAll(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let pageToken = "";
  do {
    const page = await store.list(prefix, { pageSize: 100, ...(pageToken ? { pageToken } : {}) });
    keys.push(...page.items.map((i) => i.key));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return keys;
}

/** A body of `totalBytes` in 64 KiB chunks that counts how much of it was pulled. */
function countingBody(totalBytes: number) {
  const state = { pulled: 0 };
  const chunk = Buffer.alloc(64 * 1024, 7);
  async function* body() {
    while (state.pulled < totalBytes) {
      state.pulled += chunk.byteLength;
      yield chunk;
    }
  }
  return { state, body: body() };
}

async function* chunksOf(data: Buffer, size = 64 * 1024) {
  for (let at = 0; at < data.byteLength; at += size) yield data.subarray(at, at + size);
}

const meta = (over: Partial<PromptMetadata> = {}): PromptMetadata => ({
  name: "narrator",
  referenceText: "hello there",
  modelFamily: "qwen3-tts",
  modelSize: "1.7b",
  engine: "qwen3",
  contentType: "application/octet-stream",
  tags: { lang: "en" },
  ...over,
});

const BAD_KEYS = [
  "../../etc/passwd",
  "/etc/passwd",
  "a//b",
  "a/../b",
  "",
  ".hidden",
  "a b",
  "a\\b",
];
const BAD_DIGESTS = ["../../etc/passwd", "A".repeat(64), "ab", `${"a".repeat(63)}/`, ""];

describe.each(STORE_KINDS)("%s store", (kind) => {
  let fixture: StoreFixture;
  let store: BlobStore;

  beforeAll(async () => {
    fixture = await startStore(kind);
    store = fixture.store;
  }, 60_000);
  afterAll(() => fixture?.close());

  describe("BlobStore", () => {
    it("puts, stats, gets and deletes an object with its type and metadata", async () => {
      const data = randomBytes(3000);
      const info = await store.put("t/basic/one.bin", data, {
        contentType: "audio/wav",
        metadata: { engine: "espeak" },
      });
      expect(info).toMatchObject({
        key: "t/basic/one.bin",
        sizeBytes: 3000,
        contentType: "audio/wav",
      });
      const stat = await store.stat("t/basic/one.bin");
      expect(stat).toMatchObject({
        sizeBytes: 3000,
        contentType: "audio/wav",
        metadata: { engine: "espeak" },
      });
      expect(stat?.createTime.getTime()).toBeGreaterThan(Date.now() - 60_000);
      expect((await collect(await store.get("t/basic/one.bin"))).equals(data)).toBe(true);
      expect(await store.delete("t/basic/one.bin")).toBe(true);
      expect(await store.stat("t/basic/one.bin")).toBeUndefined();
      expect(await store.delete("t/basic/one.bin")).toBe(false);
      await expect(store.get("t/basic/one.bin")).rejects.toSatisfy(isBlobNotFoundError);
    });

    it("replaces an object put twice under one key", async () => {
      await store.put("t/replace/x", Buffer.from("first"), { contentType: "text/plain" });
      await store.put("t/replace/x", Buffer.from("second!"), { contentType: "text/plain" });
      expect((await collect(await store.get("t/replace/x"))).toString()).toBe("second!");
      expect(await listAll(store, "t/replace/")).toEqual(["t/replace/x"]);
    });

    it("reads byte ranges", async () => {
      const data = randomBytes(10_000);
      await store.put("t/range/r", data, { contentType: "application/octet-stream" });
      const part = await collect(
        await store.get("t/range/r", { range: { start: 100, end: 1100 } }),
      );
      expect(part.equals(data.subarray(100, 1100))).toBe(true);
      const tail = await collect(
        await store.get("t/range/r", { range: { start: 9990, end: 20_000 } }),
      );
      expect(tail.equals(data.subarray(9990))).toBe(true);
      const past = await collect(
        await store.get("t/range/r", { range: { start: 10_000, end: 10_500 } }),
      );
      expect(past.byteLength).toBe(0);
    });

    it("lists by prefix in key order, page by page and after a key", async () => {
      const keys = ["t/list/a", "t/list/b", "t/list/c/d", "t/list/e", "t/list/f"];
      for (const key of [...keys].reverse()) {
        await store.put(key, Buffer.from(key), { contentType: "text/plain" });
      }
      await store.put("t/listx", Buffer.from("other"), { contentType: "text/plain" });
      const seen: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await store.list("t/list/", {
          pageSize: 2,
          ...(pageToken ? { pageToken } : {}),
        });
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((i) => i.key));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken && pages < 10);
      expect(seen).toEqual(keys);
      expect(pages).toBe(3);
      const after = await store.list("t/list/", { startAfter: "t/list/c/d" });
      expect(after.items.map((i) => i.key)).toEqual(["t/list/e", "t/list/f"]);
      expect(after.items[0]?.sizeBytes).toBe("t/list/e".length);
    });

    it("refuses keys voxgate never builds, storing nothing", async () => {
      for (const key of BAD_KEYS) {
        await expect(
          store.put(key, Buffer.from("x"), { contentType: "text/plain" }),
        ).rejects.toSatisfy(isBlobKeyError);
        await expect(store.get(key)).rejects.toSatisfy(isBlobKeyError);
        await expect(store.stat(key)).rejects.toSatisfy(isBlobKeyError);
        await expect(store.delete(key)).rejects.toSatisfy(isBlobKeyError);
      }
      await expect(store.list("../")).rejects.toSatisfy(isBlobKeyError);
      const all = await listAll(store, "");
      expect(all.filter((k) => !k.startsWith("t/"))).toEqual([]);
    });

    it("streams a 20 MB upload through in chunks and reads it back intact", async () => {
      const data = randomBytes(20 * MiB);
      const info = await store.put("t/big/blob", chunksOf(data), {
        contentType: "application/octet-stream",
      });
      expect(info.sizeBytes).toBe(20 * MiB);
      const hash = createHash("sha256");
      for await (const chunk of await store.get("t/big/blob")) hash.update(chunk);
      expect(hash.digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
      await store.delete("t/big/blob");
    }, 60_000);

    it("leaves nothing when the body fails midway", async () => {
      async function* failing() {
        yield Buffer.alloc(6 * MiB, 1);
        throw new Error("client went away");
      }
      await expect(
        store.put("t/fail/x", failing(), { contentType: "text/plain" }),
      ).rejects.toThrow();
      expect(await store.stat("t/fail/x")).toBeUndefined();
      expect(await listAll(store, "t/fail/")).toEqual([]);
    }, 30_000);

    it("refuses anonymous reads of the object", async () => {
      await store.put("t/private/p", Buffer.from("secret prompt"), { contentType: "text/plain" });
      const res = await fetch(fixture.anonymousUrl("t/private/p"));
      expect(res.status).toBe(403);
      expect(await res.text()).not.toContain("secret prompt");
    });

    it("serves signed URLs to plain fetch() until they expire; one hour at most", async () => {
      const data = randomBytes(5000);
      await store.put("t/signed/s", data, { contentType: "application/octet-stream" });
      const url = await store.signedReadUrl("t/signed/s", 60_000);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);

      await expect(store.signedReadUrl("t/signed/s", 3_600_001)).rejects.toSatisfy(
        isBlobUrlTtlError,
      );
      await expect(store.signedReadUrl("t/signed/s", 0)).rejects.toSatisfy(isBlobUrlTtlError);

      const short = await store.signedReadUrl("t/signed/s", 1000);
      await sleep(2200);
      const expired = await fetch(short);
      expect([400, 403]).toContain(expired.status);
      expect(Buffer.from(await expired.arrayBuffer()).equals(data)).toBe(false);

      const tampered = url.replace(/t\/signed\/s/, "t/private/p");
      expect((await fetch(tampered)).status).toBe(403);
    }, 30_000);
  });

  describe("PromptStore", () => {
    let prompts: PromptStore;
    beforeAll(() => {
      prompts = createPromptStore({
        blobs: store,
        maxPromptBytes: 1 * MiB,
        maxMetadataBytes: 4096,
      });
    });

    it("stores bytes under their sha256 once; a second put is a no-op", async () => {
      const data = randomBytes(200_000);
      const digest = createHash("sha256").update(data).digest("hex");
      const first = await prompts.put(chunksOf(data), meta());
      expect(first.created).toBe(true);
      expect(first.prompt).toMatchObject({ digest, sizeBytes: 200_000 });
      expect(await store.stat(promptBlobKey(digest))).toMatchObject({ sizeBytes: 200_000 });
      expect(promptBlobKey(digest)).toBe(`prompts/sha256/${digest.slice(0, 2)}/${digest}`);
      const metaJson = JSON.parse(
        (await collect(await store.get(promptMetadataKey(digest)))).toString(),
      );
      expect(metaJson.metadata).toMatchObject({
        name: "narrator",
        modelFamily: "qwen3-tts",
        tags: { lang: "en" },
      });

      const second = await prompts.put(chunksOf(data), meta({ name: "other name" }));
      expect(second.created).toBe(false);
      expect(second.prompt.metadata.name).toBe("narrator");
      expect(second.prompt.createTime.getTime()).toBe(first.prompt.createTime.getTime());
      expect(await listAll(store, "prompts/staging/")).toEqual([]);

      const got = await prompts.get(digest);
      expect(got.prompt.digest).toBe(digest);
      expect((await collect(got.chunks)).equals(data)).toBe(true);
      expect(await prompts.stat(digest)).toMatchObject({ digest, sizeBytes: 200_000 });

      expect(await prompts.delete(digest)).toBe(true);
      expect(await prompts.stat(digest)).toBeUndefined();
      expect(await store.stat(promptBlobKey(digest))).toBeUndefined();
      expect(await prompts.delete(digest)).toBe(false);
    });

    it("lists prompts with an opaque cursor and a model family filter", async () => {
      const made: string[] = [];
      for (let i = 0; i < 5; i++) {
        const family = i % 2 === 0 ? "qwen3-tts" : "cpu-clone";
        const { prompt } = await prompts.put(
          chunksOf(Buffer.from(`prompt ${kind} ${i}`)),
          meta({ modelFamily: family }),
        );
        made.push(prompt.digest);
      }
      const seen: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await prompts.list({ pageSize: 2, pageToken });
        expect(page.prompts.length).toBeLessThanOrEqual(2);
        seen.push(...page.prompts.map((p) => p.digest));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken && pages < 10);
      expect(seen).toEqual([...made].sort());
      expect(pages).toBe(3);
      const cpu = await prompts.list({ pageSize: 10, modelFamily: "cpu-clone" });
      expect(cpu.prompts.map((p) => p.digest).sort()).toEqual([made[1], made[3]].sort());
      expect(cpu.nextPageToken).toBe("");
      await expect(prompts.list({ pageSize: 2, pageToken: "garbage!" })).rejects.toSatisfy((e) =>
        isPromptStoreError(e, "invalid-argument"),
      );
      for (const d of made) await prompts.delete(d);
    });

    it("refuses an oversized upload as soon as it passes the limit, keeping nothing", async () => {
      const before = await listAll(store, "prompts/");
      const { state, body } = countingBody(100 * MiB);
      await expect(prompts.put(body, meta())).rejects.toSatisfy((e) =>
        isPromptStoreError(e, "too-large"),
      );
      // Refused at 1 MiB + one chunk, not after buffering the 100 MiB.
      expect(state.pulled).toBeLessThanOrEqual(1 * MiB + 64 * 1024);
      expect(await listAll(store, "prompts/")).toEqual(before);
    }, 30_000);

    it("fails a read with data-loss when stored bytes were changed behind its back", async () => {
      const data = randomBytes(50_000);
      const { prompt } = await prompts.put(chunksOf(data), meta());
      const forged = Buffer.from(data);
      forged[100] = (forged[100] ?? 0) ^ 0xff;
      await store.put(promptBlobKey(prompt.digest), forged, {
        contentType: "application/octet-stream",
      });
      const got = await prompts.get(prompt.digest);
      await expect(collect(got.chunks)).rejects.toSatisfy((e) =>
        isPromptStoreError(e, "data-loss"),
      );
      await store.put(promptBlobKey(prompt.digest), Buffer.concat([data, Buffer.from("x")]), {
        contentType: "application/octet-stream",
      });
      await expect(collect((await prompts.get(prompt.digest)).chunks)).rejects.toSatisfy((e) =>
        isPromptStoreError(e, "data-loss"),
      );
      await store.delete(promptBlobKey(prompt.digest));
      await expect(prompts.get(prompt.digest)).rejects.toSatisfy((e) =>
        isPromptStoreError(e, "data-loss"),
      );
      await prompts.delete(prompt.digest);
    });

    it("refuses malformed digests before any store sees them", async () => {
      for (const digest of BAD_DIGESTS) {
        const invalid = (e: unknown) => isPromptStoreError(e, "invalid-argument");
        await expect(prompts.get(digest)).rejects.toSatisfy(invalid);
        await expect(prompts.stat(digest)).rejects.toSatisfy(invalid);
        await expect(prompts.delete(digest)).rejects.toSatisfy(invalid);
        await expect(prompts.signedReadUrl(digest, 60_000)).rejects.toSatisfy(invalid);
      }
      await expect(prompts.get("a".repeat(64))).rejects.toSatisfy((e) =>
        isPromptStoreError(e, "not-found"),
      );
    });

    it("refuses bad metadata and empty prompts, keeping nothing", async () => {
      const before = await listAll(store, "prompts/");
      await expect(
        prompts.put(chunksOf(Buffer.from("x")), meta({ contentType: "not a type" })),
      ).rejects.toSatisfy((e) => isPromptStoreError(e, "invalid-argument"));
      await expect(
        prompts.put(chunksOf(Buffer.from("x")), meta({ tags: { "../x": "1" } })),
      ).rejects.toSatisfy((e) => isPromptStoreError(e, "invalid-argument"));
      await expect(
        prompts.put(chunksOf(Buffer.from("x")), meta({ referenceText: "x".repeat(5000) })),
      ).rejects.toSatisfy((e) => isPromptStoreError(e, "too-large"));
      await expect(prompts.put(chunksOf(Buffer.alloc(0)), meta())).rejects.toSatisfy((e) =>
        isPromptStoreError(e, "invalid-argument"),
      );
      expect(await listAll(store, "prompts/")).toEqual(before);
    });

    it("gives a signed URL of the prompt bytes that plain fetch() can read", async () => {
      const data = randomBytes(4000);
      const { prompt } = await prompts.put(chunksOf(data), meta());
      const url = await prompts.signedReadUrl(prompt.digest, 60_000);
      expect(url).not.toMatch(/PRIVATE KEY|private_key|secret/i);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const body = Buffer.from(await res.arrayBuffer());
      expect(createHash("sha256").update(body).digest("hex")).toBe(prompt.digest);
      await expect(prompts.signedReadUrl(prompt.digest, 2 * 3_600_000)).rejects.toSatisfy((e) =>
        isPromptStoreError(e, "invalid-argument"),
      );
      await prompts.delete(prompt.digest);
    });
  });
});
