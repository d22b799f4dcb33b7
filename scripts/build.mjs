#!/usr/bin/env node
// `npm run build`: compiles gen/, services/ and clients/ to dist/ with tsc, bundles the web
// console (clients/console/) into dist/console/ with esbuild, copies the plain
// JavaScript worker entries beside their compiled neighbours, the OpenAPI document and the /docs
// page's swagger-ui files, and writes what the compiled code
// reads relative to itself (dist/package.json for the version, dist/bin/voxgate.mjs for the
// launcher that starts agent processes). bin/voxgate.mjs runs dist/ when it is newer than every
// source, the sources through tsx otherwise.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
const started = performance.now();

rmSync(dist, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json")],
  {
    stdio: "inherit",
  },
);

/** Every file under `dir` whose name ends with `suffix`. */
function filesEndingWith(dir, suffix) {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(suffix))
    .map((entry) => join(entry.parentPath ?? entry.path, entry.name));
}

for (const file of filesEndingWith(join(root, "services"), ".mjs")) {
  const target = join(dist, relative(root, file));
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(file, target);
}
// The web console, bundled by the same code a gateway running from sources uses on first request.
const { bundleConsole } = await import(
  pathToFileURL(join(dist, "services/console/console-bundle.js")).href
);
const consoleFiles = await bundleConsole({ sourceDir: join(root, "clients/console") });
mkdirSync(join(dist, "console"), { recursive: true });
for (const [name, text] of Object.entries(consoleFiles)) {
  writeFileSync(join(dist, "console", name), text);
}
// The OpenAPI document the gateway serves at /openapi.json (written by `npm run gen`).
mkdirSync(join(dist, "openapi"), { recursive: true });
copyFileSync(join(root, "openapi/openapi.json"), join(dist, "openapi/openapi.json"));
// The /docs page's swagger-ui files, copied so the package needs no swagger-ui-dist (13 MB, and a
// postinstall that reports installs) at run time: its script and style, with their licence.
const swaggerUi = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
mkdirSync(join(dist, "docs-ui"), { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"]) {
  copyFileSync(join(swaggerUi, file), join(dist, "docs-ui", file));
}
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
writeFileSync(
  join(dist, "package.json"),
  `${JSON.stringify({ name: pkg.name, version: pkg.version, type: "module", private: true }, null, 2)}\n`,
);
mkdirSync(join(dist, "bin"), { recursive: true });
copyFileSync(join(root, "bin/voxgate.mjs"), join(dist, "bin/voxgate.mjs"));
// Written last: its time says when dist/ was complete (bin/voxgate.mjs compares sources to it).
writeFileSync(join(dist, "BUILD"), `${new Date().toISOString()}\n`);
console.log(`dist/ built in ${Math.round(performance.now() - started)} ms`);
