/**
 * Storage faults on a real filesystem (issue 20): a 64 KiB tmpfs stands for a full disk, the same
 * tmpfs remounted read-only for a read-only store. Before: a full disk answered with the raw ENOSPC
 * text (a path in it) and left zero-byte temp files behind. Now: RESOURCE_EXHAUSTED (full) and
 * UNAVAILABLE (read-only) with a clear message naming no path, and no temp file left. Mounting
 * needs root with CAP_SYS_ADMIN; where that is missing (some CI runners) the tmpfs cases are
 * skipped, and services/jobs/job-runner.test.ts still covers a full store with a fake BlobStore.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFsBlobStore } from "../../services/object-store/fs-blob-store.js";
import { storageFaultOf } from "../../services/object-store/storage-faults.js";
import { toPromptRpcError } from "../../services/prompt-store/prompt-rpc-error.js";
import { createPromptStore } from "../../services/prompt-store/prompt-store.js";

const dir = mkdtempSync(join(tmpdir(), "voxgate-tmpfs-"));
let mounted = false;
try {
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], { stdio: "ignore" });
  mounted = true;
} catch {
  mounted = false;
}

afterAll(() => {
  if (mounted) execFileSync("umount", [dir], { stdio: "ignore" });
  rmSync(dir, { recursive: true, force: true });
});

/** Every file under the store root (temp files included). */
function files(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe.skipIf(!mounted)("an object store on a tiny tmpfs", () => {
  const root = join(dir, "store");
  const blobs = createFsBlobStore({ rootDir: root });
  const prompts = createPromptStore({ blobs, maxPromptBytes: 8 << 20, maxMetadataBytes: 65_536 });
  const metadata = {
    name: "big",
    referenceText: "",
    modelFamily: "f",
    modelSize: "",
    engine: "e",
    contentType: "application/octet-stream",
    tags: {},
  };
  beforeAll(async () => {
    // Something small fits: the store works until it is full.
    await blobs.put("small", new Uint8Array(1024), { contentType: "application/octet-stream" });
  });

  it("refuses a write that does not fit with RESOURCE_EXHAUSTED and leaves no temp file", async () => {
    const before = files(root);
    const err = await prompts
      .put(
        (async function* () {
          for (let i = 0; i < 16; i++) yield new Uint8Array(16 * 1024).fill(i);
        })(),
        metadata,
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(storageFaultOf(err)?.kind).toBe("full");
    const rpc = toPromptRpcError(err);
    expect(rpc.code).toBe(Code.ResourceExhausted);
    expect(rpc.rawMessage).toMatch(/the object store is full \(ENOSPC/);
    expect(rpc.rawMessage).not.toContain(dir);
    expect(files(root)).toEqual(before);
  });

  it("refuses writes to a read-only store with UNAVAILABLE", async () => {
    execFileSync("mount", ["-o", "remount,ro", dir], { stdio: "ignore" });
    try {
      const err = await blobs
        .put("other", new Uint8Array(10), { contentType: "application/octet-stream" })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(storageFaultOf(err)?.kind).toBe("read-only");
      const rpc = toPromptRpcError(err);
      expect(rpc.code).toBe(Code.Unavailable);
      expect(rpc.rawMessage).toMatch(/refuses writes \(EROFS/);
    } finally {
      execFileSync("mount", ["-o", "remount,rw", dir], { stdio: "ignore" });
    }
  });
});

// Needs no mount: the data lands in tmp/, then the sidecar cannot be placed because a file stands
// where its directory must be (as a half-written store or a bad restore leaves it). Both temp
// files must go, and nothing may become visible under the key.
describe("an object store whose metadata step fails after the data was written", () => {
  const root = mkdtempSync(join(tmpdir(), "voxgate-meta-fault-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("removes the data and sidecar temp files and leaves the key absent", async () => {
    const blobs = createFsBlobStore({ rootDir: root });
    mkdirSync(join(root, "meta"), { recursive: true });
    writeFileSync(join(root, "meta", "voices"), "not a directory");
    const err = await blobs
      .put("voices/a.bin", new Uint8Array(4096).fill(7), {
        contentType: "application/octet-stream",
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((err as NodeJS.ErrnoException | undefined)?.code).toMatch(/^(ENOTDIR|EEXIST)$/);
    expect(readdirSync(join(root, "tmp"))).toEqual([]);
    expect(await blobs.stat("voices/a.bin")).toBeUndefined();
    expect(files(root).map((f) => f.slice(root.length))).toEqual([join("/meta", "voices")]);
    // The same failure on copy (data copied into tmp/, then the sidecar fails) leaves nothing.
    await blobs.put("src.bin", new Uint8Array(10), { contentType: "application/octet-stream" });
    await expect(blobs.copy?.("src.bin", "voices/b.bin")).rejects.toThrow();
    expect(readdirSync(join(root, "tmp"))).toEqual([]);
    expect(await blobs.stat("voices/b.bin")).toBeUndefined();
  });
});
