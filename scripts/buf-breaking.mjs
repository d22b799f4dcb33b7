#!/usr/bin/env node
/**
 * Fails when the contracts in `proto/` break compatibility with an earlier commit's `proto/`.
 *
 * Runs `buf breaking` (rules from our `buf.yaml`, `breaking.use: FILE`) for the `proto` module of
 * the working tree against the `proto` module of a git ref: HEAD~1 unless `--against <git-ref>` or
 * the `VOXGATE_BREAKING_AGAINST` environment variable names another (the flag wins).
 *
 * Why a script and not `buf breaking --against '.git#ref=…'`: the buf registry is unreachable, and
 * our workspace takes google/api and grpc.health.v1 in place from `node_modules/`, which a git
 * input does not contain. So the ref's `proto/` and `buf.yaml` are extracted into a temporary
 * directory (`git archive | tar -x`), our `node_modules` is symlinked beside them so the in-place
 * modules resolve offline, and the two `proto` modules are compared directory against directory:
 * like with like, each built by its own commit's workspace config. The temporary directory is
 * removed afterwards.
 *
 * Exit status: 0 when nothing broke, or when the check is skipped with one "skipped: …" line (not a
 * git checkout, the default ref does not exist as in a first commit or a shallow clone, or the ref
 * has no `proto/`); 1 on breaking changes, after buf's own report; 2 when the check cannot run
 * (an explicitly named ref that does not resolve, buf not installed, buf failing to build).
 *
 * Usage: node scripts/buf-breaking.mjs [--against <git-ref>]
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const DEFAULT_REF = "HEAD~1";
/** `buf breaking` exits with this status when it found violations (as opposed to failing to run). */
const BUF_EXIT_FILE_ANNOTATIONS = 100;

const root = fileURLToPath(new URL("..", import.meta.url));
const buf = join(root, "node_modules", ".bin", "buf");

/**
 * Runs a command in the repository root and returns its exit status and captured output.
 * @param {string} file
 * @param {string[]} args
 */
function run(file, args) {
  const result = spawnSync(file, args, { cwd: root, encoding: "utf8" });
  return {
    status: result.error ? null : result.status,
    stdout: result.stdout ?? "",
    stderr: result.stderr ?? "",
    error: result.error,
  };
}

/** @param {string} reason */
function skip(reason) {
  console.log(`buf-breaking: skipped: ${reason}`);
  process.exit(0);
}

/** @param {string} message */
function fail(message) {
  console.error(`buf-breaking: ${message}`);
  process.exit(2);
}

/** @param {string[]} args */
function git(...args) {
  return run("git", args);
}

const USAGE = "usage: node scripts/buf-breaking.mjs [--against <git-ref>]  (default HEAD~1)";
/** @type {{ against?: string | undefined, help?: boolean | undefined }} */
let values;
try {
  ({ values } = parseArgs({
    options: { against: { type: "string" }, help: { type: "boolean", short: "h" } },
  }));
} catch (err) {
  fail(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const explicitRef = values.against ?? process.env.VOXGATE_BREAKING_AGAINST;
const ref = explicitRef || DEFAULT_REF;

const inside = git("rev-parse", "--is-inside-work-tree");
if (inside.error) skip(`git is not available (${inside.error.message})`);
if (inside.status !== 0 || inside.stdout.trim() !== "true") {
  // Anything else (e.g. "detected dubious ownership") must not quietly turn the check off.
  if (inside.status !== 0 && !/not a git repository/.test(inside.stderr)) {
    fail(`git rev-parse failed: ${inside.stderr.trim()}`);
  }
  skip("not a git checkout");
}

const resolved = git("rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`);
if (resolved.status !== 0) {
  // A ref someone named must exist; only the implicit HEAD~1 may be absent.
  if (explicitRef) fail(`git ref "${ref}" does not resolve to a commit in this clone`);
  const shallow = git("rev-parse", "--is-shallow-repository").stdout.trim() === "true";
  skip(`${ref} does not exist (${shallow ? "shallow clone" : "first commit"})`);
}
const commit = resolved.stdout.trim();
const label = `${ref} (${commit.slice(0, 12)})`;

if (git("ls-tree", "-d", "--name-only", commit, "--", "proto").stdout.trim() !== "proto") {
  skip(`${label} has no proto/ directory`);
}
if (!existsSync(buf)) fail(`${buf} not found; run npm ci first`);

// The old workspace config says how to build the old module. A commit without one falls back to
// ours, which is what its proto/ would have been built with today.
const hasOldConfig = git("cat-file", "-e", `${commit}:buf.yaml`).status === 0;
const paths = hasOldConfig ? ["proto", "buf.yaml"] : ["proto"];

const workdir = mkdtempSync(join(tmpdir(), "voxgate-buf-breaking-"));
let exitCode;
try {
  exitCode = compare(workdir);
} catch (err) {
  console.error(`buf-breaking: ${err instanceof Error ? err.message : String(err)}`);
  exitCode = 2;
} finally {
  rmSync(workdir, { recursive: true, force: true });
}
process.exit(exitCode);

/**
 * Extracts the ref's `proto/` into `workdir` and runs `buf breaking` against it; returns the exit
 * status for this script. Throws when the comparison cannot be set up.
 * @param {string} workdir
 */
function compare(workdir) {
  const tarball = join(workdir, "against.tar");
  const old = join(workdir, "against");
  mkdirSync(old);
  const archive = git("archive", "--format=tar", `--output=${tarball}`, commit, "--", ...paths);
  if (archive.status !== 0) throw new Error(`git archive ${label} failed:\n${archive.stderr}`);
  const extract = run("tar", ["-x", "-f", tarball, "-C", old]);
  if (extract.status !== 0) throw new Error(`extracting ${label} failed:\n${extract.stderr}`);
  if (!hasOldConfig) copyFileSync(join(root, "buf.yaml"), join(old, "buf.yaml"));
  symlinkSync(join(root, "node_modules"), join(old, "node_modules"), "dir");

  const result = spawnSync(buf, ["breaking", "proto", "--against", join(old, "proto")], {
    cwd: root,
    stdio: "inherit",
  });
  if (result.error) throw new Error(`could not run buf: ${result.error.message}`);
  if (result.status === 0) {
    console.log(`buf-breaking: no breaking changes in proto/ against ${label}`);
    return 0;
  }
  if (result.status === BUF_EXIT_FILE_ANNOTATIONS) {
    console.error(`buf-breaking: proto/ has breaking changes against ${label} (see above)`);
    return 1;
  }
  console.error(`buf-breaking: buf breaking failed with status ${result.status ?? result.signal}`);
  return 2;
}
