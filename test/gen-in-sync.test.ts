import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// `gen/` and `test/gen/` are committed and written only by `buf generate` (`npm run gen`:
// buf.gen.yaml for proto/, buf.gen.test.yaml for the test-only test/proto/); this proves both
// match their protos as they are now, so a contract change cannot land without its regenerated code.

const root = fileURLToPath(new URL("..", import.meta.url));
const buf = join(root, "node_modules", ".bin", "buf");
/** Each generated tree, the template that writes it, and its sources (for messages). */
const trees = [
  { dir: "gen", template: "buf.gen.yaml", from: "proto/" },
  { dir: "test/gen", template: "buf.gen.test.yaml", from: "test/proto/" },
] as const;
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

describe.each(trees)("$dir/", ({ dir, template, from }) => {
  let outDir = "";
  let freshGen = "";
  const committedGen = join(root, dir);

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), "voxgate-gen-"));
    // buf v2 prepends -o to each plugin's `out`, so the fresh tree lands in <outDir>/<dir>;
    // cwd is the root because the templates name the plugin as node_modules/.bin/protoc-gen-es.
    await promisify(execFile)(buf, ["generate", "--template", template, "-o", outDir], {
      cwd: root,
      timeout: generateTimeoutMs,
    });
    freshGen = join(outDir, dir);
  }, generateTimeoutMs + 10_000);

  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it(`is exactly what buf generate writes from ${from}`, async () => {
    const [fresh, committed] = await Promise.all([listFiles(freshGen), listFiles(committedGen)]);
    expect(fresh.length, "buf generate wrote no files").toBeGreaterThan(0);

    const committedSet = new Set(committed);
    const freshSet = new Set(fresh);
    const problems: string[] = [];
    for (const file of fresh) {
      if (!committedSet.has(file)) {
        problems.push(`${dir}/${file}: missing (buf generate writes it)`);
      } else {
        const [want, got] = await Promise.all([
          readFile(join(freshGen, file)),
          readFile(join(committedGen, file)),
        ]);
        if (!want.equals(got))
          problems.push(`${dir}/${file}: differs from what buf generate writes`);
      }
    }
    for (const file of committed) {
      if (!freshSet.has(file))
        problems.push(`${dir}/${file}: extra (buf generate does not write it)`);
    }

    expect(
      problems,
      `${dir}/ is out of date with ${from} — run npm run gen and commit:\n  ${problems.join("\n  ")}`,
    ).toEqual([]);
  });
});
