import { describe, expect, it } from "vitest";
import { createRouteMatcher, type HttpRouteSpec, openApiTemplate } from "./http-route-spec.js";

const spec = (method: HttpRouteSpec["method"], path: string): HttpRouteSpec => ({
  method,
  path,
  service: undefined,
  doc: { operationId: `${method} ${path}`, tags: [], summary: "", responses: {} },
});

const routes = [
  spec("GET", "/prompts/search"),
  spec("GET", "/prompts/{name}"),
  spec("DELETE", "/prompts/{name}"),
  spec("GET", "/blobs/{key=**}"),
  spec("POST", "/v1/prompts:upload"),
];

describe("createRouteMatcher", () => {
  const matcher = createRouteMatcher(routes);

  it("tries declarations in order: a literal path declared first wins over a template", () => {
    expect(matcher.match("GET", "/prompts/search")).toMatchObject({
      kind: "match",
      spec: { path: "/prompts/search" },
      params: {},
    });
    expect(matcher.match("GET", "/prompts/a%20b")).toMatchObject({
      kind: "match",
      spec: { path: "/prompts/{name}" },
      params: { name: "a%20b" },
    });
    // DELETE passes the literal GET route and matches the template.
    expect(matcher.match("DELETE", "/prompts/search")).toMatchObject({
      kind: "match",
      spec: { method: "DELETE" },
      params: { name: "search" },
    });
  });

  it("matches one segment for {x} and several for {x=**}; the rest literally", () => {
    expect(matcher.match("GET", "/prompts/a/b").kind).toBe("none");
    expect(matcher.match("GET", "/blobs/a/b/c")).toMatchObject({ params: { key: "a/b/c" } });
    expect(matcher.match("GET", "/blobs/").kind).toBe("none");
    // `.` and `:` are literal, not patterns.
    expect(matcher.match("POST", "/v1/prompts:upload").kind).toBe("match");
    expect(matcher.match("POST", "/v1/promptsXupload").kind).toBe("none");
  });

  it("names the allowed methods of a declared path, each once", () => {
    expect(matcher.match("PUT", "/prompts/x")).toEqual({
      kind: "method-not-allowed",
      allow: ["GET", "DELETE"],
    });
    expect(matcher.match("HEAD", "/prompts/search")).toEqual({
      kind: "method-not-allowed",
      allow: ["GET", "DELETE"],
    });
  });

  it("takes HEAD for GET when asked, and mounts under a base path", () => {
    const mounted = createRouteMatcher(routes, { headAsGet: true, basePath: "/sf" });
    expect(mounted.match("HEAD", "/sf/prompts/search").kind).toBe("match");
    expect(mounted.match("GET", "/prompts/search").kind).toBe("none");
    expect(openApiTemplate("/blobs/{key=**}", "/sf")).toBe("/sf/blobs/{key}");
  });

  it("refuses a malformed template at start", () => {
    expect(() => createRouteMatcher([spec("GET", "/a/{b")])).toThrow("/a/{b");
    expect(() => createRouteMatcher([spec("GET", "a")])).toThrow("lacks its /");
  });
});
