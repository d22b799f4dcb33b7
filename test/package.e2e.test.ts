/**
 * The package as someone else installs it: `npm pack` (which builds dist/), install the tarball
 * into an empty directory, run `npx voxgate start` there, and call it with the typed client
 * imported as `voxgate/client`, types included. Dependencies come from npm's cache (CI ran
 * `npm ci` first), so nothing but the registry is needed.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../services/auth/token-codec.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
/** What `npm pack` needs to build and pack the package. */
const PACKED_SOURCES = [
  "package.json",
  "tsconfig.json",
  "tsconfig.build.json",
  "scripts",
  "bin",
  "gen",
  "services",
  "clients",
  "openapi",
  "README.md",
  "LICENSE",
];

/**
 * Stops a process started with `detached: true` and everything in its group (npx, voxgate and
 * the local agent keep writing under `.voxgate/` until they exit), then waits until none is left:
 * SIGTERM, and SIGKILL after 30 s.
 */
async function stopProcessGroup(child: ChildProcess): Promise<void> {
  const group = -(child.pid ?? 0);
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(group, name);
      return true;
    } catch {
      return false; // ESRCH: the group is gone
    }
  };
  if (!child.pid || !signal("SIGTERM")) return;
  const deadline = performance.now() + 30_000;
  while (await groupAlive(child.pid)) {
    if (performance.now() > deadline) {
      signal("SIGKILL");
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Whether any process of group `pgid` still runs (zombies left to an init that never reaps do not count). */
async function groupAlive(pgid: number): Promise<boolean> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so split after the last ")".
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") return true;
  }
  return false;
}

describe("npm pack: an installable package", () => {
  let work = "";
  let app = "";

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "voxgate-pack-"));
    app = join(work, "app");
    // Packed from a copy of the sources, so the build it runs writes the copy's dist/, never the
    // checkout's (processes of other tests may be running from that one).
    const checkout = join(work, "checkout");
    for (const entry of PACKED_SOURCES) {
      await cp(join(root, entry), join(checkout, entry), { recursive: true });
    }
    await symlink(join(root, "node_modules"), join(checkout, "node_modules"), "dir");
    await run(npm, ["pack", "--pack-destination", work, "--silent"], {
      cwd: checkout,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, npm_config_update_notifier: "false" },
    });
    const tarball = (await readdir(work)).find((name) => name.endsWith(".tgz"));
    if (!tarball) throw new Error("npm pack made no tarball");
    await run("mkdir", ["-p", app]);
    await writeFile(
      join(app, "package.json"),
      '{ "name": "app", "private": true, "type": "module" }\n',
    );
    await run(
      npm,
      ["install", "--prefer-offline", "--no-audit", "--no-fund", join(work, tarball)],
      { cwd: app, maxBuffer: 16 * 1024 * 1024 },
    );
  }, 600_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true, maxRetries: 5 });
  });

  it("ships compiled JavaScript with types, and no TypeScript sources or tests", async () => {
    const installed = join(app, "node_modules", "voxgate");
    expect(existsSync(join(installed, "dist/clients/index.js"))).toBe(true);
    expect(existsSync(join(installed, "dist/clients/index.d.ts"))).toBe(true);
    expect(existsSync(join(installed, "dist/services/database/pglite-worker.mjs"))).toBe(true);
    // The browser client (the `browser` export condition) and the prebuilt web console.
    expect(existsSync(join(installed, "dist/clients/browser.js"))).toBe(true);
    expect(existsSync(join(installed, "dist/console/app.js"))).toBe(true);
    // /openapi.json and the /docs page's files, copied by the build (swagger-ui-dist is a
    // development dependency only).
    expect(existsSync(join(installed, "dist/openapi/openapi.json"))).toBe(true);
    expect(existsSync(join(installed, "dist/docs-ui/swagger-ui-bundle.js"))).toBe(true);
    expect(existsSync(join(installed, "dist/docs-ui/LICENSE"))).toBe(true);
    expect(existsSync(join(app, "node_modules", "swagger-ui-dist"))).toBe(false);
    expect(existsSync(join(installed, "services"))).toBe(false);
    expect(existsSync(join(installed, "test"))).toBe(false);
    const files = await readdir(join(installed, "dist"), { recursive: true });
    expect(files.filter((f) => String(f).endsWith(".test.js"))).toEqual([]);
  });

  it("gives bundlers the browser client under the `browser` condition of voxgate/client", async () => {
    await writeFile(
      join(app, "page.js"),
      'import { createVoxgateClient } from "voxgate/client";\nexport const client = createVoxgateClient;\n',
    );
    const esbuild = await import("esbuild");
    const result = await esbuild.build({
      absWorkingDir: app,
      entryPoints: ["page.js"],
      bundle: true,
      write: false,
      platform: "browser",
      format: "esm",
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs).toContain("node_modules/voxgate/dist/clients/browser.js");
    expect(inputs.filter((path) => /connect-node|^node:/.test(path))).toEqual([]);
  });

  it("runs `npx voxgate start` and speaks through `voxgate/client`", async () => {
    const token = generateToken();
    const started = performance.now();
    const stack = spawn("npx", ["--no-install", "voxgate", "start"], {
      cwd: app,
      // Its own process group: npx, voxgate and the local agent are stopped together.
      detached: true,
      env: {
        ...process.env,
        VOXGATE_PORT: "0",
        VOXGATE_AGENT_PORT: "0",
        VOXGATE_TOKEN: token,
        VOXGATE_LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let buffered = "";
        let publicUrl = "";
        const timer = setTimeout(
          () => reject(new Error(`no ready agent in 120 s:\n${buffered}`)),
          120_000,
        );
        stack.stdout.setEncoding("utf8").on("data", (text: string) => {
          buffered += text;
          for (const line of text.split("\n")) {
            if (!line.startsWith("{")) continue;
            const entry = JSON.parse(line) as { msg?: string; publicUrl?: string };
            // "voxgate ready" comes once the local agent is READY (after its "agent ready").
            if (entry.msg === "voxgate ready") {
              publicUrl = String(entry.publicUrl);
              clearTimeout(timer);
              resolve(publicUrl);
            }
          }
        });
        stack.once("exit", (code) =>
          reject(new Error(`voxgate start exited (${code}):\n${buffered}`)),
        );
      });
      // The console is served from dist/console/ (no sources, no esbuild at run time).
      const page = await fetch(url, { headers: { accept: "text/html" } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("/console/app.js");
      expect((await fetch(`${url}/console/app.js`)).status).toBe(200);
      const script = join(app, "speak.mjs");
      await writeFile(
        script,
        `import { createVoxgateClient } from "voxgate/client";
const client = createVoxgateClient({ baseUrl: process.argv[2], token: process.argv[3] });
let bytes = 0;
for await (const chunk of client.tts.streamSynthesize({ text: "Hello from the package" })) bytes += chunk.data.byteLength;
client.close();
console.log(bytes);
`,
      );
      const { stdout } = await run(process.execPath, [script, url, token], { cwd: app });
      expect(Number(stdout.trim())).toBeGreaterThan(44 + 22_050);
      // The API description and its reference page, from the package's own files.
      const openapi = await fetch(`${url}/openapi.json`);
      expect(openapi.status).toBe(200);
      expect(((await openapi.json()) as { openapi: string }).openapi).toBe("3.1.0");
      for (const path of ["/docs", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"]) {
        const res = await fetch(`${url}${path}`);
        expect(res.status, path).toBe(200);
        expect((await res.arrayBuffer()).byteLength, path).toBeGreaterThan(300);
      }
      console.info(
        `[figures] installed package: npx voxgate start → audio spoken: ${Math.round(performance.now() - started)} ms`,
      );
    } finally {
      await stopProcessGroup(stack);
    }
  }, 180_000);
});
