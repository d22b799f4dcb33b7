import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createPromptCache, PromptDigestMismatchError, sha256Hex } from "./prompt-cache.js";

const log = pino({ level: "silent" });
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "voxgate-prompt-cache-"));
  dirs.push(dir);
  return dir;
}

function prompt(size: number): { digest: string; bytes: Uint8Array } {
  const bytes = new Uint8Array(randomBytes(size));
  return { digest: sha256Hex(bytes), bytes };
}

describe("prompt cache", () => {
  it("keeps verified prompts on disk under their digest and serves them back", async () => {
    const dir = await tempDir();
    const cache = createPromptCache({ dir: join(dir, "prompts"), maxBytes: 10_000, log });
    await cache.open();
    // Nothing on disk until the first prompt: agents that never clone leave no directory.
    expect(await readdir(dir)).toEqual([]);
    const a = prompt(1000);
    await cache.put(a.digest, a.bytes);
    expect(cache.has(a.digest)).toBe(true);
    expect(cache.sizeBytes).toBe(1000);
    expect(Buffer.from((await cache.get(a.digest)) ?? []).equals(Buffer.from(a.bytes))).toBe(true);
    expect(await readdir(join(dir, "prompts"))).toEqual([a.digest]);
  });

  it("refuses bytes that do not hash to their digest and stores nothing", async () => {
    const dir = await tempDir();
    const cache = createPromptCache({ dir, maxBytes: 10_000, log });
    await cache.open();
    const a = prompt(100);
    const other = prompt(100);
    await expect(cache.put(a.digest, other.bytes)).rejects.toBeInstanceOf(
      PromptDigestMismatchError,
    );
    expect(cache.has(a.digest)).toBe(false);
    expect(cache.sizeBytes).toBe(0);
    expect(await readdir(dir)).toEqual([]);
  });

  it("never builds a path from anything but a sha256 digest", async () => {
    const dir = await tempDir();
    const cache = createPromptCache({ dir, maxBytes: 10_000, log });
    await cache.open();
    await expect(cache.put("../../etc/passwd", new Uint8Array(1))).rejects.toThrow(
      /not a sha256 digest/,
    );
    expect(await cache.get("../../etc/passwd")).toBeUndefined();
    expect(await readdir(dir)).toEqual([]);
  });

  it("evicts the least recently used prompts past its byte limit", async () => {
    const dir = await tempDir();
    const cache = createPromptCache({ dir, maxBytes: 300, log });
    await cache.open();
    const [a, b, c, d] = [prompt(100), prompt(100), prompt(100), prompt(100)];
    for (const p of [a, b, c]) await cache.put(p.digest, p.bytes);
    // Using a makes b the least recently used.
    expect(await cache.get(a.digest)).toBeDefined();
    await cache.put(d.digest, d.bytes);
    expect(cache.has(b.digest)).toBe(false);
    expect([a, c, d].every((p) => cache.has(p.digest))).toBe(true);
    expect(cache.sizeBytes).toBe(300);
    expect((await readdir(dir)).sort()).toEqual([a.digest, c.digest, d.digest].sort());
    expect(cache.digests(2)).toEqual([d.digest, a.digest]);
  });

  it("uses but never keeps a prompt larger than the whole cache", async () => {
    const dir = await tempDir();
    const cache = createPromptCache({ dir, maxBytes: 100, log });
    await cache.open();
    const big = prompt(101);
    const bytes = await cache.getOrLoad(big.digest, async () => big.bytes);
    await cache.idle();
    expect(bytes).toEqual(big.bytes);
    expect(cache.has(big.digest)).toBe(false);
    expect(await readdir(dir)).toEqual([]);
  });

  it("drops a corrupted file instead of serving it", async () => {
    const dir = await tempDir();
    const cache = createPromptCache({ dir, maxBytes: 10_000, log });
    await cache.open();
    const a = prompt(500);
    await cache.put(a.digest, a.bytes);
    const corrupted = Buffer.from(a.bytes);
    corrupted[17] = (corrupted[17] ?? 0) ^ 0xff;
    await writeFile(join(dir, a.digest), corrupted);
    expect(await cache.get(a.digest)).toBeUndefined();
    expect(cache.has(a.digest)).toBe(false);
    expect(cache.sizeBytes).toBe(0);
    expect(await readdir(dir)).toEqual([]);
  });

  it("survives a restart: rescans files, keeps recency by mtime, removes stale temp files", async () => {
    const dir = await tempDir();
    const first = createPromptCache({ dir, maxBytes: 10_000, log });
    await first.open();
    const [a, b] = [prompt(100), prompt(200)];
    await first.put(a.digest, a.bytes);
    await first.put(b.digest, b.bytes);
    // a used long after b; a crash left a temp file behind.
    await utimes(join(dir, b.digest), new Date(1_000_000), new Date(1_000_000));
    await utimes(join(dir, a.digest), new Date(2_000_000), new Date(2_000_000));
    await writeFile(join(dir, `.tmp-${a.digest}-abc`), "half a prompt");

    const second = createPromptCache({ dir, maxBytes: 10_000, log });
    await second.open();
    expect(second.sizeBytes).toBe(300);
    expect(second.digests(10)).toEqual([a.digest, b.digest]);
    expect(Buffer.from((await second.get(b.digest)) ?? []).equals(Buffer.from(b.bytes))).toBe(true);
    expect((await readdir(dir)).sort()).toEqual([a.digest, b.digest].sort());

    // A smaller limit at start evicts the least recently used (b was just used, so a goes).
    const third = createPromptCache({ dir, maxBytes: 250, log });
    await third.open();
    expect(third.has(a.digest)).toBe(false);
    expect(third.has(b.digest)).toBe(true);
  });

  it("coalesces concurrent loads of one digest, and retries after a failed one", async () => {
    const dir = await tempDir();
    const cache = createPromptCache({ dir, maxBytes: 10_000, log });
    await cache.open();
    const a = prompt(300);
    let loads = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const load = async () => {
      loads++;
      await gate;
      return a.bytes;
    };
    const both = Promise.all([cache.getOrLoad(a.digest, load), cache.getOrLoad(a.digest, load)]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    const [x, y] = await both;
    expect(loads).toBe(1);
    expect(x).toEqual(a.bytes);
    expect(y).toEqual(a.bytes);

    const b = prompt(300);
    let attempts = 0;
    const failing = cache.getOrLoad(b.digest, async () => {
      attempts++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw new Error("first caller went away");
    });
    const second = cache.getOrLoad(b.digest, async () => {
      attempts++;
      return b.bytes;
    });
    await expect(failing).rejects.toThrow("first caller went away");
    expect(await second).toEqual(b.bytes);
    await cache.idle();
    expect(attempts).toBe(2);
    expect(cache.has(b.digest)).toBe(true);
  });
});
