/**
 * The console's routes on a real HTTP server: `/` answers the page to browsers only, the bundle is
 * built from the sources on first request, revalidation gives 304, and a built console that is
 * missing is a 503 naming `npm run build`.
 */

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { HttpFrontend } from "../gateway/http-frontend.js";
import {
  type ConsoleSource,
  createConsoleFrontend,
  defaultConsoleSource,
} from "./console-frontend.js";

let server: Server | undefined;
afterEach(async () => {
  const open = server;
  server = undefined;
  if (open) await new Promise((resolve) => open.close(resolve));
});

/** Serves `frontend`, answering 404 where it has no route (as the REST transcoder would). */
async function serve(frontend: HttpFrontend): Promise<string> {
  server = createServer((req, res) => {
    const route = frontend.route(req);
    if (!route) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"code":"not_found"}');
      return;
    }
    route.serve(req, res, { requestId: "r", principal: undefined, clientAddress: "" });
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
}

const log = pino({ level: "silent" });

describe("console frontend", () => {
  it("runs from the sources in a checkout", () => {
    expect(defaultConsoleSource().kind).toBe("sources");
  });

  it("answers the page to browsers and leaves / to JSON clients", async () => {
    const url = await serve(createConsoleFrontend({ log }));
    const page = await fetch(url, {
      headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" },
    });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toContain("connect-src 'self'");
    expect(await page.text()).toContain('<script type="module" src="/console/app.js">');
    for (const accept of ["application/json", "*/*", ""]) {
      const json = await fetch(url, { headers: { accept } });
      expect(json.status).toBe(404);
      expect(json.headers.get("content-type")).toBe("application/json");
    }
    expect((await fetch(url, { method: "POST", headers: { accept: "text/html" } })).status).toBe(
      404,
    );
  });

  it("bundles the script from the sources once, and revalidates with its ETag", async () => {
    const url = await serve(createConsoleFrontend({ log }));
    const script = await fetch(`${url}/console/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const text = await script.text();
    // The console's own code, bundled with the client it calls (a boolean: the text is big).
    expect(text.includes("watchBackends") && text.includes("voxgate.token")).toBe(true);
    expect(text.length).toBeGreaterThan(10_000);
    // fetch asks for gzip and decodes it; the bytes on the wire are the gzipped ones.
    expect(script.headers.get("content-encoding")).toBe("gzip");
    expect(Number(script.headers.get("content-length"))).toBeLessThan(text.length / 2);
    const etag = script.headers.get("etag") ?? "";
    const again = await fetch(`${url}/console/app.js`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    const head = await fetch(`${url}/console/app.css`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBeGreaterThan(100);
  });

  it("serves a built console from its folder, and names npm run build when it is missing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "voxgate-console-"));
    try {
      const source: ConsoleSource = { kind: "built", dir };
      const url = await serve(createConsoleFrontend({ log, source }));
      const missing = await fetch(`${url}/console/app.js`);
      expect(missing.status).toBe(503);
      expect(await missing.text()).toContain("run npm run build");
      await writeFile(join(dir, "index.html"), "<!doctype html><p>built</p>");
      await writeFile(join(dir, "app.js"), "console.log('built')");
      await writeFile(join(dir, "app.css"), "p{}");
      // The failed load is not cached: the next request reads the files now present.
      expect(await (await fetch(`${url}/console/app.js`)).text()).toBe("console.log('built')");
      const page = await fetch(url, { headers: { accept: "text/html" } });
      expect(await page.text()).toContain("built");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
