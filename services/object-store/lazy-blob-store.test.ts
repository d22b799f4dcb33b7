import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BlobStore } from "./blob-store.js";
import { createFsBlobStore } from "./fs-blob-store.js";
import { createLazyBlobStore } from "./lazy-blob-store.js";

async function text(store: BlobStore, key: string): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const part of await store.get(key)) parts.push(part);
  return Buffer.concat(parts).toString("utf8");
}

describe("lazy blob store", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "voxgate-lazy-store-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("loads its implementation on first use, once, and passes every call through", async () => {
    let loads = 0;
    const store = createLazyBlobStore("s3", async () => {
      loads++;
      return createFsBlobStore({ rootDir: dir });
    });
    expect(store.kind).toBe("s3");
    expect(loads).toBe(0);
    await Promise.all([
      store.put("a/one", Buffer.from("first"), { contentType: "text/plain" }),
      store.put("a/two", Buffer.from("second"), { contentType: "text/plain" }),
    ]);
    expect(loads).toBe(1);
    expect(await text(store, "a/one")).toBe("first");
    expect((await store.stat("a/two"))?.sizeBytes).toBe(6);
    expect((await store.list("a/")).items.map((i) => i.key)).toEqual(["a/one", "a/two"]);
    expect((await store.copy?.("a/one", "b/one"))?.sizeBytes).toBe(5);
    expect(await text(store, "b/one")).toBe("first");
    expect(await store.delete("a/one")).toBe(true);
    expect(await store.stat("a/one")).toBeUndefined();
    expect(loads).toBe(1);
  });

  it("closes without loading when never used, and retries a load that failed", async () => {
    let loads = 0;
    const store = createLazyBlobStore("gcs", async () => {
      loads++;
      if (loads === 1) throw new Error("no credentials yet");
      return createFsBlobStore({ rootDir: dir });
    });
    await store.close();
    expect(loads).toBe(0);
    await expect(store.stat("x")).rejects.toThrow("no credentials yet");
    expect(await store.stat("x")).toBeUndefined();
    expect(loads).toBe(2);
  });
});
