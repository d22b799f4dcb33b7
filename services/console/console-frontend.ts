import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { Logger } from "pino";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import { writeRpcError } from "../auth/rpc-error-response.js";
import type { HttpFrontend, HttpRoute } from "../gateway/http-frontend.js";
import type { HttpRouteSpec } from "../gateway/http-route-spec.js";
import { bundleConsole, CONSOLE_FILE_NAMES, type ConsoleFiles } from "./console-bundle.js";

/** Where the console's files come from. */
export type ConsoleSource =
  /** Files written by `npm run build` (`dist/console/`). */
  | { kind: "built"; dir: string }
  /** Sources bundled in memory on the first request (a checkout run through tsx). */
  | { kind: "sources"; dir: string };

/** Options of {@link createConsoleFrontend}. */
export interface ConsoleFrontendOptions {
  /** Where the files come from. @default {@link defaultConsoleSource} */
  source?: ConsoleSource;
  /** Logger. */
  log: Logger;
}

/**
 * Where a gateway finds its console: compiled code (`dist/services/console/`) serves the files
 * `npm run build` wrote beside it (`dist/console/`); the TypeScript sources (a checkout run through
 * tsx, as `npm start` and the tests do) bundle `clients/console/` on first use, so a fresh clone
 * needs no build step and an edited source is never hidden by an old bundle.
 */
export function defaultConsoleSource(): ConsoleSource {
  const runsSources = import.meta.url.endsWith(".ts");
  return runsSources
    ? { kind: "sources", dir: fileURLToPath(new URL("../../clients/console/", import.meta.url)) }
    : { kind: "built", dir: fileURLToPath(new URL("../../console/", import.meta.url)) };
}

interface Asset {
  body: Buffer;
  /** The body gzipped once at load: the script shrinks to about a third on the wire. */
  gzipped: Buffer;
  contentType: string;
  etag: string;
}

const CONTENT_TYPES: Record<keyof ConsoleFiles, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

/**
 * The page may load only its own script and style, talk only to its own origin, and play audio
 * from `blob:` URLs it made; nothing can frame it. A token pasted into it therefore cannot be sent
 * anywhere else by injected markup.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "media-src 'self' blob:",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The console's files by URL path: the page at `/`, its script and style under `/console/`. */
const FILES: ReadonlyArray<{
  path: string;
  name: keyof ConsoleFiles;
  operationId: string;
  summary: string;
}> = [
  {
    path: "/",
    name: "index.html",
    operationId: "Console_Page",
    summary:
      "The web console for people: answered to requests that accept `text/html` (browsers); " +
      "any other `GET /` falls through to the REST routes (a JSON 404).",
  },
  {
    path: "/console/app.js",
    name: "app.js",
    operationId: "Console_Script",
    summary: "Its script.",
  },
  {
    path: "/console/app.css",
    name: "app.css",
    operationId: "Console_Style",
    summary: "Its style.",
  },
];
const PATHS: Record<string, keyof ConsoleFiles> = Object.fromEntries(
  FILES.map((f) => [f.path, f.name]),
);

/** The routes of {@link createConsoleFrontend} (HEAD too), one per file. */
export const CONSOLE_ROUTES: readonly HttpRouteSpec[] = FILES.map((f) => ({
  method: "GET",
  path: f.path,
  service: undefined,
  doc: {
    operationId: f.operationId,
    tags: ["Console"],
    summary: f.summary,
    responses: {
      "200": {
        description: "OK",
        content: { [CONTENT_TYPES[f.name]]: { schema: { type: "string" } } },
      },
      "304": { description: "Not modified (the ETag matched)." },
    },
  },
}));

/**
 * The web console for people at `/`: `GET /` (and `HEAD /`) from a browser — an `Accept` header
 * that names `text/html` — answers the page; any other `GET /` (curl, JSON clients) falls through
 * to the REST routes as before (a JSON 404). The page's script and style live under `/console/`.
 * No route needs a token: the page holds none until someone pastes one, and every call it makes
 * goes through the gate like any other client's.
 */
export function createConsoleFrontend(options: ConsoleFrontendOptions): HttpFrontend {
  const source = options.source ?? defaultConsoleSource();
  const log = options.log.child({ component: "console" });
  let loading: Promise<Map<keyof ConsoleFiles, Asset>> | undefined;

  async function load(): Promise<Map<keyof ConsoleFiles, Asset>> {
    const started = performance.now();
    let files: ConsoleFiles;
    if (source.kind === "sources") {
      files = await bundleConsole({ sourceDir: source.dir });
    } else {
      const texts = await Promise.all(
        CONSOLE_FILE_NAMES.map((name) => readFile(`${source.dir}/${name}`, "utf8")),
      );
      files = Object.fromEntries(CONSOLE_FILE_NAMES.map((n, i) => [n, texts[i]])) as never;
    }
    const assets = new Map<keyof ConsoleFiles, Asset>();
    for (const name of CONSOLE_FILE_NAMES) {
      const body = Buffer.from(files[name]);
      const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
      assets.set(name, { body, gzipped: gzipSync(body), contentType: CONTENT_TYPES[name], etag });
    }
    log.info(
      {
        source: source.kind,
        scriptBytes: assets.get("app.js")?.body.length,
        ms: Math.round(performance.now() - started),
      },
      "console loaded",
    );
    return assets;
  }

  function assets(): Promise<Map<keyof ConsoleFiles, Asset>> {
    loading ??= load().catch((err: unknown) => {
      // Try again on the next request: a source being edited may bundle then.
      loading = undefined;
      throw err;
    });
    return loading;
  }

  const route = (name: keyof ConsoleFiles): HttpRoute => ({
    service: undefined,
    writeError: writeRpcError,
    serve(req, res) {
      assets().then(
        (all) => send(req, res, all.get(name) as Asset),
        (err: unknown) => {
          log.error({ err }, "console could not be loaded");
          res.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
          res.end(
            source.kind === "built"
              ? `the web console is not built: run npm run build (${source.dir})\n`
              : "the web console's sources do not bundle; see the gateway log\n",
          );
        },
      );
    },
  });

  return {
    routes: CONSOLE_ROUTES,
    route(req: NodeRequest) {
      if (req.method !== "GET" && req.method !== "HEAD") return undefined;
      const path = (req.url ?? "").split("?")[0] ?? "";
      if (path === "/" && !wantsHtml(req)) return undefined;
      const name = PATHS[path];
      return name ? route(name) : undefined;
    },
  };
}

/** Whether a request asks for HTML: browsers navigating send `Accept: text/html,…`. */
function wantsHtml(req: NodeRequest): boolean {
  const accept = String(req.headers.accept ?? "");
  return /(^|,)\s*text\/html\s*(;|,|$)/i.test(accept);
}

function send(req: NodeRequest, res: NodeResponse, asset: Asset): void {
  const headers: Record<string, string> = {
    "content-type": asset.contentType,
    etag: asset.etag,
    // Revalidate every time: the ETag makes that a 304, and a new gateway version is seen at once.
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": CONTENT_SECURITY_POLICY,
    vary: "Accept, Accept-Encoding",
  };
  if (req.headers["if-none-match"] === asset.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const gzip = /\bgzip\b/i.test(String(req.headers["accept-encoding"] ?? ""));
  const body = gzip ? asset.gzipped : asset.body;
  if (gzip) headers["content-encoding"] = "gzip";
  headers["content-length"] = String(body.length);
  res.writeHead(200, headers);
  if (req.method === "HEAD") res.end();
  else res.end(body);
}
