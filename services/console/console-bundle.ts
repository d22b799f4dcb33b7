import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** The console's files as the gateway serves them, by file name. */
export interface ConsoleFiles {
  /** The page. */
  "index.html": string;
  /** The script bundle (ES module, minified). */
  "app.js": string;
  /** The style sheet. */
  "app.css": string;
}

/** Names of the files a built console consists of. */
export const CONSOLE_FILE_NAMES: readonly (keyof ConsoleFiles)[] = [
  "index.html",
  "app.js",
  "app.css",
];

/** Options of {@link bundleConsole}. */
export interface BundleConsoleOptions {
  /** Folder of the console's sources (`clients/console` of a checkout). */
  sourceDir: string;
  /**
   * Minify the script.
   * @default true
   */
  minify?: boolean;
}

/**
 * Bundles the web console from its sources with esbuild for browsers: the script (with Preact,
 * the browser client and the generated service descriptors), its style sheet and its page.
 * Bundling for the `browser` platform fails on any Node module, so a Node-only import in the
 * browser client can never reach the page. esbuild is loaded on demand: it is a tool of
 * checkouts (tsx brings it), never needed by a built package, which serves `dist/console/`.
 *
 * @throws Error with esbuild's messages when the sources do not bundle.
 */
export async function bundleConsole(options: BundleConsoleOptions): Promise<ConsoleFiles> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [join(options.sourceDir, "main.tsx")],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: options.minify ?? true,
    jsx: "automatic",
    jsxImportSource: "preact",
    tsconfig: join(options.sourceDir, "tsconfig.json"),
    legalComments: "none",
    logLevel: "silent",
    outfile: "app.js",
  });
  const script = result.outputFiles[0];
  if (!script) throw new Error("esbuild produced no console bundle");
  const [html, css] = await Promise.all([
    readFile(join(options.sourceDir, "index.html"), "utf8"),
    readFile(join(options.sourceDir, "console.css"), "utf8"),
  ]);
  return { "index.html": html, "app.js": script.text, "app.css": css };
}
