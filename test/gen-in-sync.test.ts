import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// `gen/` is committed and written only by `buf generate`; this proves it matches proto/ as it is
// now, so a contract change cannot land without its regenerated code.

const root = fileURLToPath(new URL("..", import.meta.url));
const buf = join(root, "node_modules", ".bin", "buf");
const committedGen = join(root, "gen");
/** Cold buf plus protoc-gen-es (a Node process) on a loaded two-core CI machine. */
const generateTimeoutMs = 120_000;

/** Lists every file under `dir` as a `/`-separated path relative to it, sorted. */
async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = prefix + entry.name;
    if (entry.isDirectory()) files.push(...(await listFiles(join(dir, entry.name), `${path}/`)));
    else files.push(path);
  }
  return files.sort();
}

describe("gen/", () => {
  let outDir = "";
  let freshGen = "";

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), "voxgate-gen-"));
    // buf v2 prepends -o to each plugin's `out: gen`, so the fresh tree lands in <outDir>/gen;
    // cwd is the root because buf.gen.yaml names the plugin as node_modules/.bin/protoc-gen-es.
    await promisify(execFile)(buf, ["generate", "--template", "buf.gen.yaml", "-o", outDir], {
      cwd: root,
      timeout: generateTimeoutMs,
    });
    freshGen = join(outDir, "gen");
  }, generateTimeoutMs + 10_000);

  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it("is exactly what buf generate writes from proto/", async () => {
    const [fresh, committed] = await Promise.all([listFiles(freshGen), listFiles(committedGen)]);
    expect(fresh.length, "buf generate wrote no files").toBeGreaterThan(0);

    const committedSet = new Set(committed);
    const freshSet = new Set(fresh);
    const problems: string[] = [];
    for (const file of fresh) {
      if (!committedSet.has(file)) {
        problems.push(`gen/${file}: missing (buf generate writes it)`);
      } else {
        const [want, got] = await Promise.all([
          readFile(join(freshGen, file)),
          readFile(join(committedGen, file)),
        ]);
        if (!want.equals(got)) problems.push(`gen/${file}: differs from what buf generate writes`);
      }
    }
    for (const file of committed) {
      if (!freshSet.has(file)) problems.push(`gen/${file}: extra (buf generate does not write it)`);
    }

    expect(
      problems,
      `gen/ is out of date with proto/ — run npm run gen and commit:\n  ${problems.join("\n  ")}`,
    ).toEqual([]);
  });
});
