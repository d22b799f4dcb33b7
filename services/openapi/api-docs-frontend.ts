import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import { writeRpcError } from "../auth/rpc-error-response.js";
import type { HttpFrontend, HttpRoute } from "../gateway/http-frontend.js";
import type { HttpRouteSpec } from "../gateway/http-route-spec.js";

/** Options of {@link createApiDocsFrontend}. */
export interface ApiDocsFrontendOptions {
  /**
   * The OpenAPI document's text. @default the committed openapi/openapi.json (dist/openapi/ in
   * the built package), read once at start
   */
  openApiJson?: string;
  /**
   * Folder holding swagger-ui-dist's `swagger-ui-bundle.js` and `swagger-ui.css`. @default
   * dist/docs-ui/ in the built package, else the swagger-ui-dist package (a development
   * dependency); absent: /docs answers 404 naming what is missing
   */
  uiDir?: string | undefined;
}

/** A file the frontend serves, loaded on first use and kept with its gzip form. */
interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
}

/** The reference page: swagger-ui from this gateway, no CDN, reading ./openapi.json. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>voxgate API reference</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
`;
/** Kept out of the page so a strict Content-Security-Policy (no inline script) holds. */
const INIT = `window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
});
`;
const UI_FILES: Record<string, string> = {
  "/docs/swagger-ui.css": "text/css; charset=utf-8",
  "/docs/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};

/** Files of the page under `/docs/`: its start script and swagger-ui's files. */
const DOCS_FILES = ["/docs/init.js", ...Object.keys(UI_FILES)];

const text = (type: string) => ({
  "200": { description: "OK", content: { [type]: { schema: { type: "string" } } } },
});

/** The routes of {@link createApiDocsFrontend} (HEAD too); none needs a token. */
export const API_DOCS_ROUTES: readonly HttpRouteSpec[] = [
  {
    method: "GET",
    path: "/openapi.json",
    service: undefined,
    doc: {
      operationId: "Gateway_OpenApi",
      tags: ["Gateway"],
      summary: "This document.",
      responses: {
        "200": {
          description: "OK",
          content: { "application/json": { schema: { type: "object" } } },
        },
      },
    },
  },
  {
    method: "GET",
    path: "/docs",
    service: undefined,
    doc: {
      operationId: "Gateway_Docs",
      tags: ["Gateway"],
      summary: "An API reference page for people, rendered from this document.",
      responses: text("text/html"),
    },
  },
  {
    method: "GET",
    path: "/docs/",
    service: undefined,
    doc: {
      operationId: "Gateway_DocsSlash",
      tags: ["Gateway"],
      summary: "Redirects to /docs (the page's relative links resolve against it).",
      responses: { "308": { description: "To ../docs." } },
    },
  },
  {
    method: "GET",
    path: "/docs/{file}",
    service: undefined,
    doc: {
      operationId: "Gateway_DocsFile",
      tags: ["Gateway"],
      summary: "The reference page's script and style (swagger-ui, served here, no CDN).",
      parameters: [
        {
          name: "file",
          in: "path",
          required: true,
          schema: { type: "string", enum: DOCS_FILES.map((f) => f.slice("/docs/".length)) },
        },
      ],
      responses: {
        ...text("text/javascript"),
        "404": { description: "swagger-ui-dist is not installed (the page's files only)." },
      },
    },
  },
];

/** Where swagger-ui's files are: the built package's copy, else the installed package. */
function findUiDir(): string | undefined {
  const built = fileURLToPath(new URL("../../docs-ui/", import.meta.url));
  if (existsSync(join(built, "swagger-ui-bundle.js"))) return built;
  try {
    return dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  } catch {
    return undefined;
  }
}

/**
 * Serves the API description without a token: `GET /openapi.json` (the OpenAPI 3.1 document
 * `npm run gen` writes) and `GET /docs`, an API reference page (swagger-ui, served from this
 * gateway's own files, never a CDN) with its script and style under `/docs/`. Text answers are
 * gzipped for clients that accept it. Tokens typed into the page stay in the page.
 */
export function createApiDocsFrontend(options: ApiDocsFrontendOptions = {}): HttpFrontend {
  const openApiJson =
    options.openApiJson ??
    readFileSync(new URL("../../openapi/openapi.json", import.meta.url), "utf8");
  const uiDir = "uiDir" in options ? options.uiDir : findUiDir();
  const assets = new Map<string, Asset>();
  const asset = (path: string): Asset | undefined => {
    let found = assets.get(path);
    if (found) return found;
    let body: Buffer;
    let type: string;
    if (path === "/openapi.json") {
      [body, type] = [Buffer.from(openApiJson), "application/json"];
    } else if (path === "/docs") {
      [body, type] = [Buffer.from(PAGE), "text/html; charset=utf-8"];
    } else if (path === "/docs/init.js") {
      [body, type] = [Buffer.from(INIT), "text/javascript; charset=utf-8"];
    } else {
      const uiType = UI_FILES[path];
      if (!uiType || !uiDir) return undefined;
      body = readFileSync(join(uiDir, path.slice("/docs/".length)));
      type = uiType;
    }
    found = { type, body, gzip: gzipSync(body) };
    assets.set(path, found);
    return found;
  };

  const serve = (path: string): HttpRoute => ({
    service: undefined,
    writeError: writeRpcError,
    serve(req: NodeRequest, res: NodeResponse) {
      const file = asset(path);
      if (!file) {
        res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
        res.end(
          "the API reference page's files (swagger-ui-dist) are not installed; /openapi.json is\n",
        );
        return;
      }
      const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
      const body = gzip ? file.gzip : file.body;
      res.writeHead(200, {
        "content-type": file.type,
        "content-length": String(body.byteLength),
        // The page and the document change with the gateway; the UI files with its package.
        "cache-control": path.startsWith("/docs/swagger-ui") ? "public, max-age=86400" : "no-cache",
        vary: "Accept-Encoding",
        ...(gzip ? { "content-encoding": "gzip" } : {}),
      });
      if (req.method === "HEAD") res.end();
      else res.end(body);
    },
  });

  return {
    routes: API_DOCS_ROUTES,
    route(req) {
      if (req.method !== "GET" && req.method !== "HEAD") return undefined;
      const path = (req.url ?? "").split("?")[0] ?? "";
      if (path === "/docs/") {
        return {
          service: undefined,
          writeError: writeRpcError,
          serve(_req, res) {
            // Relative asset URLs resolve against /docs, not /docs/.
            res.writeHead(308, { location: "../docs" });
            res.end();
          },
        };
      }
      if (path === "/openapi.json" || path === "/docs" || DOCS_FILES.includes(path)) {
        return serve(path);
      }
      return undefined;
    },
  };
}
