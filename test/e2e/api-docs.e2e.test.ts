/**
 * /openapi.json and the /docs reference page on a real gateway process, over HTTP as a browser
 * fetches them: no token needed, the served document is the committed one, and the page and
 * every script and style it loads come from the gateway itself (no other host).
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPENAPI_FILE } from "../../scripts/gen-openapi.js";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";

/** The URLs a page loads: `src` and `href` attributes, resolved against the page. */
function assetUrls(html: string, page: string): URL[] {
  return [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => new URL(m[1] ?? "", page));
}

describe("/openapi.json and /docs", () => {
  let gateway: GatewayProcess;

  beforeAll(async () => {
    gateway = await startGatewayProcess();
  }, 60_000);

  afterAll(async () => {
    expect(await gateway?.proc.stop()).toBe(0);
  });

  it("serves the committed OpenAPI document without a token", async () => {
    const res = await fetch(`${gateway.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.text()).toBe(readFileSync(OPENAPI_FILE, "utf8"));
  });

  it("gzips text for clients that accept it", async () => {
    const res = await new Promise<{ encoding: string; body: Buffer }>((resolve, reject) => {
      // fetch would decode it: node:http shows what went over the wire.
      import("node:http").then(({ get }) =>
        get(`${gateway.url}/openapi.json`, { headers: { "accept-encoding": "gzip" } }, (r) => {
          const chunks: Buffer[] = [];
          r.on("data", (c: Buffer) => chunks.push(c));
          r.on("end", () =>
            resolve({
              encoding: String(r.headers["content-encoding"]),
              body: Buffer.concat(chunks),
            }),
          );
        }).on("error", reject),
      );
    });
    expect(res.encoding).toBe("gzip");
    expect(gunzipSync(res.body).toString()).toBe(readFileSync(OPENAPI_FILE, "utf8"));
    expect(res.body.byteLength).toBeLessThan(readFileSync(OPENAPI_FILE).byteLength / 4);
  });

  it("serves /docs and every asset it loads from the gateway itself, without a token", async () => {
    const page = `${gateway.url}/docs`;
    const res = await fetch(page);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await res.text();
    const urls = assetUrls(html, page);
    expect(urls.map((u) => u.pathname).sort()).toEqual(
      ["/docs/init.js", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"].sort(),
    );
    let bytes = html.length;
    for (const url of urls) {
      expect(url.origin, `${url} is not on the gateway`).toBe(new URL(gateway.url).origin);
      const asset = await fetch(url);
      expect(asset.status, url.pathname).toBe(200);
      expect(asset.headers.get("content-type")).toMatch(
        url.pathname.endsWith(".css") ? /^text\/css/ : /^text\/javascript/,
      );
      const body = await asset.text();
      bytes += body.length;
      if (url.pathname.endsWith("bundle.js")) expect(body).toContain("SwaggerUIBundle");
      if (url.pathname.endsWith("init.js")) {
        // The page reads the document from the same gateway, resolved against the page.
        expect(body).toContain('new URL("openapi.json", document.baseURI)');
      }
    }
    console.info(`[figures] /docs page weight (uncompressed): ${Math.round(bytes / 1024)} KiB`);
  });

  it("redirects /docs/ to /docs and answers unknown /docs/ files 404", async () => {
    const slash = await fetch(`${gateway.url}/docs/`, { redirect: "manual" });
    expect(slash.status).toBe(308);
    expect(new URL(String(slash.headers.get("location")), `${gateway.url}/docs/`).pathname).toBe(
      "/docs",
    );
    expect((await fetch(`${gateway.url}/docs/../../etc/passwd`)).status).toBe(404);
    expect((await fetch(`${gateway.url}/docs/swagger-ui.js.map`)).status).toBe(404);
  });

  it("answers HEAD with headers only", async () => {
    const res = await fetch(`${gateway.url}/docs/swagger-ui.css`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get("content-length"))).toBeGreaterThan(10_000);
    expect(await res.text()).toBe("");
  });
});
