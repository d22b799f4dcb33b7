/**
 * Conformance of the REST/JSON transcoder with `google.api.http`, table-driven, over a real HTTP
 * server: every HttpRule feature (paths, bodies, query, response_body, HttpBody in and out,
 * streams as NDJSON and SSE, error statuses, 404/405, unknown query parameters, limits), against
 * the test-only BookshelfService, never against voxgate's own services.
 */
import { createHash } from "node:crypto";
import * as http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpStatusOfCode } from "../../services/transcoding/index.js";
import {
  type RestTestServer,
  type SentResponse,
  send,
  startRestTestServer,
} from "./rest-test-server.js";

interface Case {
  /** What the case shows. */
  name: string;
  method: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  status: number;
  /** Expected JSON body (compared with toMatchObject), or a check of the whole response. */
  json?: unknown;
  check?: (res: SentResponse) => void;
  /** RPC that must have been called (or undefined: none must have been). */
  rpc: string | undefined;
}

const uploadBytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));

const cases: Case[] = [
  // Paths.
  {
    name: "named segment {name=shelves/*}",
    method: "GET",
    path: "/v1/shelves/s1",
    status: 200,
    json: { name: "shelves/s1", title: "Shelf shelves/s1", via: "GetShelf" },
    rpc: "GetShelf",
  },
  {
    name: "additional_bindings",
    method: "GET",
    path: "/v1/shelf/s1",
    status: 200,
    json: { name: "s1", via: "GetShelf" },
    rpc: "GetShelf",
  },
  {
    name: "the literal path beats the template that also matches it",
    method: "GET",
    path: "/v1/shelves/featured",
    status: 200,
    json: { name: "shelves/featured", via: "GetFeaturedShelf" },
    rpc: "GetFeaturedShelf",
  },
  {
    name: "percent-decoding of a single-segment variable, %2F included",
    method: "GET",
    path: "/v1/shelf/a%20b%2Fc",
    status: 200,
    json: { name: "a b/c" },
    rpc: "GetShelf",
  },
  {
    name: "a multi-segment variable keeps %2F encoded",
    method: "GET",
    path: "/v1/shelves/a%20b%2Fc",
    status: 200,
    json: { name: "shelves/a b%2Fc" },
    rpc: "GetShelf",
  },
  {
    name: "** keeps %2F encoded and takes any depth",
    method: "GET",
    path: "/v1/files/a/b%2Fc/d.txt",
    status: 200,
    check: (res) => {
      expect(res.headers["content-type"]).toBe("text/plain");
      expect(res.body.toString()).toBe("file:a/b%2Fc/d.txt");
    },
    rpc: "GetFile",
  },
  {
    name: "custom verb :archive with body *",
    method: "POST",
    path: "/v1/shelves/s1:archive",
    body: '{"reason":"old"}',
    headers: { "content-type": "application/json" },
    status: 200,
    json: { name: "shelves/s1", archived: true, title: "old", via: "ArchiveShelf" },
    rpc: "ArchiveShelf",
  },
  {
    name: "custom HTTP method LINK",
    method: "LINK",
    path: "/v1/shelves/s1",
    status: 200,
    json: { name: "shelves/s1", via: "LinkShelf", title: expect.stringMatching(/^req-\d+$/) },
    rpc: "LinkShelf",
  },
  {
    name: "DELETE with a multi-segment named variable",
    method: "DELETE",
    path: "/v1/shelves/s1/books/b1",
    status: 200,
    json: { name: "shelves/s1/books/b1" },
    rpc: "DeleteBook",
  },
  // Bodies.
  {
    name: 'body: "field" plus the path and a query parameter',
    method: "POST",
    path: "/v1/shelves/s1/books?request_id=r1",
    body: '{"title":"T","genre":"GENRE_FICTION","author":{"name":"Ann","born":1950},"pages":"12"}',
    status: 200,
    json: {
      shelf: "shelves/s1",
      title: "T",
      genre: "GENRE_FICTION",
      author: { name: "Ann", born: 1950 },
      pages: "12",
      tags: ["r1"],
    },
    rpc: "CreateBook",
  },
  {
    name: "PATCH: nested path fields {book.shelf}/{book.id} win over the body",
    method: "PATCH",
    path: "/v1/shelves/s1/books/b1",
    body: '{"title":"New","shelf":"elsewhere","tags":["x","y"]}',
    status: 200,
    json: { shelf: "s1", id: "b1", title: "New", tags: ["x", "y"] },
    rpc: "UpdateBook",
  },
  {
    name: 'PUT with body "*", proto names and enum numbers',
    method: "PUT",
    path: "/v1/shelves/s1/books/b1",
    body: '{"title":"X","genre":2}',
    status: 200,
    json: { shelf: "s1", id: "b1", title: "X", genre: "GENRE_POETRY" },
    rpc: "ReplaceBook",
  },
  {
    name: "empty body with body * is an empty message",
    method: "POST",
    path: "/v1/shelves/s2:archive",
    status: 200,
    json: { name: "shelves/s2", archived: true },
    rpc: "ArchiveShelf",
  },
  {
    name: "HttpBody in: the raw body with its content type",
    method: "POST",
    path: "/v1/uploads/u1",
    body: uploadBytes,
    headers: { "content-type": "image/png" },
    status: 200,
    json: {
      name: "u1",
      sizeBytes: "3000",
      contentType: "image/png",
      sha256: createHash("sha256").update(uploadBytes).digest("hex"),
    },
    rpc: "UploadFile",
  },
  // Query.
  {
    name: "query: nested, repeated, enums by name and number, WKTs, int64, bool",
    method: "GET",
    path:
      "/v1/shelves/s1/books?page_size=5&genres=GENRE_POETRY&genres=1&tags=a&tags=b%20c" +
      "&filter.author=Ann&filter.minPages=10&updated_after=2024-01-02T03:04:05Z&max_age=1.5s" +
      "&min_rating=4.5&include_drafts=true&offset=9007199254740993&ids=1&ids=2",
    status: 200,
    json: {
      request: {
        parent: "shelves/s1",
        pageSize: 5,
        genres: ["GENRE_POETRY", "GENRE_FICTION"],
        tags: ["a", "b c"],
        filter: { author: "Ann", minPages: 10 },
        updatedAfter: "2024-01-02T03:04:05Z",
        maxAge: "1.500s",
        minRating: 4.5,
        includeDrafts: true,
        offset: "9007199254740993",
        ids: [1, 2],
      },
    },
    rpc: "ListBooks",
  },
  {
    name: "query: lowerCamel names work too",
    method: "GET",
    path: "/v1/shelves/s1/books?pageSize=7&includeDrafts=false",
    status: 200,
    json: { request: { parent: "shelves/s1", pageSize: 7 } },
    rpc: "ListBooks",
  },
  {
    name: "query: unknown parameter is refused with 400",
    method: "GET",
    path: "/v1/shelves/s1/books?page_size=5&bogus=1",
    status: 400,
    json: { code: Code.InvalidArgument, message: expect.stringContaining('"bogus"') },
    rpc: undefined,
  },
  {
    name: "query: a path-bound field is not a query parameter",
    method: "GET",
    path: "/v1/shelves/s1/books?parent=shelves/other",
    status: 400,
    json: { code: Code.InvalidArgument, message: expect.stringContaining('"parent"') },
    rpc: undefined,
  },
  {
    name: 'query: nothing is a query parameter with body "*"',
    method: "PUT",
    path: "/v1/shelves/s1/books/b1?title=x",
    body: "{}",
    status: 400,
    json: { code: Code.InvalidArgument, message: expect.stringContaining('"title"') },
    rpc: undefined,
  },
  {
    name: "query: unknown enum name",
    method: "GET",
    path: "/v1/shelves/s1/books?genres=GENRE_NOPE",
    status: 400,
    json: { code: Code.InvalidArgument },
    rpc: undefined,
  },
  {
    name: "query: a singular field given twice",
    method: "GET",
    path: "/v1/shelves/s1/books?page_size=1&page_size=2",
    status: 400,
    json: { code: Code.InvalidArgument, message: expect.stringContaining("more than once") },
    rpc: undefined,
  },
  {
    name: "query: not a number",
    method: "GET",
    path: "/v1/shelves/s1/books?page_size=many",
    status: 400,
    json: { code: Code.InvalidArgument },
    rpc: undefined,
  },
  // response_body.
  {
    name: "response_body: one field of the response",
    method: "GET",
    path: "/v1/shelves/s1/title",
    status: 200,
    json: "Title of shelves/s1",
    rpc: "GetShelfTitle",
  },
  // Bad bodies and headers.
  {
    name: "invalid JSON",
    method: "PUT",
    path: "/v1/shelves/s1/books/b1",
    body: "{title:",
    status: 400,
    json: { code: Code.InvalidArgument, message: expect.stringContaining("not valid JSON") },
    rpc: undefined,
  },
  {
    name: "unknown JSON field",
    method: "PUT",
    path: "/v1/shelves/s1/books/b1",
    body: '{"nope":1}',
    status: 400,
    json: { code: Code.InvalidArgument, message: expect.stringContaining("nope") },
    rpc: undefined,
  },
  {
    name: "JSON nested too deep",
    method: "PUT",
    path: "/v1/shelves/s1/books/b1",
    body: `${"[".repeat(100)}${"]".repeat(100)}`,
    status: 400,
    json: { code: Code.InvalidArgument, message: expect.stringContaining("nests deeper") },
    rpc: undefined,
  },
  {
    name: "a body where the rule takes none",
    method: "DELETE",
    path: "/v1/shelves/s1/books/b1",
    body: '{"x":1}',
    status: 400,
    json: { code: Code.InvalidArgument, message: expect.stringContaining("takes no request body") },
    rpc: undefined,
  },
  {
    name: "body over the limit: 413 naming the setting",
    method: "PUT",
    path: "/v1/shelves/s1/books/b1",
    body: `{"title":"${"x".repeat(70 * 1024)}"}`,
    status: 413,
    json: {
      code: Code.ResourceExhausted,
      message: expect.stringContaining("VOXGATE_MAX_REQUEST_BYTES"),
    },
    rpc: undefined,
  },
  {
    name: "a bad deadline header",
    method: "GET",
    path: "/v1/shelves/featured",
    headers: { "x-voxgate-timeout-ms": "soon" },
    status: 400,
    json: { code: Code.InvalidArgument, message: expect.stringContaining("x-voxgate-timeout-ms") },
    rpc: undefined,
  },
  {
    name: "the deadline header reaches the handler",
    method: "GET",
    path: "/v1/shelves/featured",
    headers: { "x-voxgate-timeout-ms": "5000" },
    status: 200,
    check: (res) => {
      const left = Number((res.json as { title: string }).title);
      expect(left).toBeGreaterThan(3000);
      expect(left).toBeLessThanOrEqual(5000);
    },
    rpc: "GetFeaturedShelf",
  },
  {
    name: "a deadline over the maximum is cut to it",
    method: "GET",
    path: "/v1/shelves/featured",
    headers: { "x-voxgate-timeout-ms": "999999999" },
    status: 200,
    check: (res) => {
      const left = Number((res.json as { title: string }).title);
      expect(left).toBeGreaterThan(50_000);
      expect(left).toBeLessThanOrEqual(60_000);
    },
    rpc: "GetFeaturedShelf",
  },
  {
    name: "response headers of the RPC reach the client",
    method: "GET",
    path: "/v1/shelves/s9",
    status: 200,
    check: (res) => expect(res.headers["x-voxgate-backend"]).toBe("shelf-backend-1"),
    rpc: "GetShelf",
  },
  // No route.
  {
    name: "404 when no template matches",
    method: "GET",
    path: "/v1/nothing/here",
    status: 404,
    json: { code: Code.NotFound, message: "no route for GET /v1/nothing/here", details: [] },
    rpc: undefined,
  },
  {
    name: "405 with Allow when the path exists for another method",
    method: "POST",
    path: "/v1/shelves/s1/title",
    status: 405,
    check: (res) => {
      expect(res.headers.allow).toBe("GET");
      expect(res.json).toMatchObject({ code: Code.Unimplemented });
    },
    rpc: undefined,
  },
  {
    name: "an error from the RPC: its status and JSON",
    method: "GET",
    path: "/v1/shelves/missing",
    status: 404,
    json: { code: Code.NotFound, message: 'shelf "shelves/missing" does not exist', details: [] },
    rpc: "GetShelf",
  },
];

/** grpc-gateway's HTTP status for every code. */
const statusTable: Array<[Code, number]> = [
  [Code.Canceled, 499],
  [Code.Unknown, 500],
  [Code.InvalidArgument, 400],
  [Code.DeadlineExceeded, 504],
  [Code.NotFound, 404],
  [Code.AlreadyExists, 409],
  [Code.PermissionDenied, 403],
  [Code.ResourceExhausted, 429],
  [Code.FailedPrecondition, 400],
  [Code.Aborted, 409],
  [Code.OutOfRange, 400],
  [Code.Unimplemented, 501],
  [Code.Internal, 500],
  [Code.Unavailable, 503],
  [Code.DataLoss, 500],
  [Code.Unauthenticated, 401],
];

describe("REST transcoder conformance (BookshelfService over real HTTP)", () => {
  let server: RestTestServer;

  beforeAll(async () => {
    server = await startRestTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  for (const c of cases) {
    it(c.name, async () => {
      const before = server.calls.length;
      const res = await send(server.url, c.method, c.path, {
        ...(c.body !== undefined ? { body: c.body } : {}),
        ...(c.headers ? { headers: c.headers } : {}),
      });
      expect(res.status, res.body.toString()).toBe(c.status);
      if (c.json !== undefined) {
        if (typeof c.json === "object") expect(res.json).toMatchObject(c.json as object);
        else expect(res.json).toEqual(c.json);
      }
      c.check?.(res);
      if (c.status >= 400 && c.status !== 413) {
        expect(res.headers["content-type"]).toBe("application/json");
      }
      const made = server.calls.slice(before).map((call) => call.rpc);
      expect(made).toEqual(c.rpc ? [c.rpc] : []);
    });
  }

  it("leaves Connect/gRPC paths to the next handler", async () => {
    const res = await send(server.url, "POST", "/voxgate.testing.v1.BookshelfService/GetShelf", {
      body: "{}",
    });
    expect(res.status).toBe(418);
    expect(server.passed).toContain("POST /voxgate.testing.v1.BookshelfService/GetShelf");
  });

  for (const [code, status] of statusTable) {
    it(`answers ${Code[code]} with HTTP ${status} and a google.rpc.Status body`, async () => {
      expect(httpStatusOfCode(code)).toBe(status);
      const res = await send(server.url, "GET", `/v1/errors/${code}`);
      expect(res.status).toBe(status);
      expect(res.headers["content-type"]).toBe("application/json");
      expect(res.json).toEqual({
        code,
        message: `failing with code ${code}`,
        details: [{ "@type": "type.googleapis.com/voxgate.testing.v1.Shelf", name: "detail" }],
      });
    });
  }

  describe("server streaming of messages", () => {
    it("is newline-delimited JSON by default", async () => {
      const res = await send(server.url, "GET", "/v1/shelves/s1/books:stream?count=3");
      expect(res.status).toBe(200);
      expect(res.headers["content-type"]).toBe("application/x-ndjson");
      expect(res.headers["transfer-encoding"]).toBe("chunked");
      const lines = res.body
        .toString()
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(lines).toEqual(
        [0, 1, 2].map((i) => ({
          result: { shelf: "shelves/s1", id: `b${i}`, title: `Book ${i}` },
        })),
      );
      expect(res.cut).toBe(false);
    });

    it("ends with the error as the last line when it fails midway", async () => {
      const res = await send(server.url, "GET", "/v1/shelves/s1/books:stream?count=5&fail_after=2");
      expect(res.status).toBe(200);
      const lines = res.body
        .toString()
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(3);
      expect(lines.slice(0, 2).map((l) => l.result.id)).toEqual(["b0", "b1"]);
      expect(lines[2]).toEqual({
        error: { code: Code.DataLoss, message: "stopped after 2 books", details: [] },
      });
    });

    it("is server-sent events when the client accepts text/event-stream", async () => {
      const res = await send(
        server.url,
        "GET",
        "/v1/shelves/s1/books:stream?count=4&fail_after=3",
        {
          headers: { accept: "text/event-stream" },
        },
      );
      expect(res.status).toBe(200);
      expect(res.headers["content-type"]).toBe("text/event-stream");
      const events = res.body
        .toString()
        .split("\n\n")
        .filter((e) => e !== "");
      expect(events).toHaveLength(4);
      for (const [i, event] of events.slice(0, 3).entries()) {
        expect(JSON.parse(event.replace(/^data: /, ""))).toMatchObject({ id: `b${i}` });
      }
      const last = events[3] ?? "";
      expect(last.split("\n")[0]).toBe("event: error");
      expect(JSON.parse(last.split("\n")[1]?.replace(/^data: /, "") ?? "")).toMatchObject({
        code: Code.DataLoss,
      });
    });

    it("fails with a plain error status when it fails before the first message", async () => {
      const res = await send(server.url, "GET", "/v1/shelves/s1/books:stream?count=5&fail_after=0");
      expect(res.status).toBe(500);
      expect(res.json).toMatchObject({ code: Code.DataLoss, message: "stopped after 0 books" });
    });
  });

  describe("HttpBody streams (raw bytes, chunked)", () => {
    it("streams raw bytes with the first chunk's content type", async () => {
      const res = await send(server.url, "POST", "/v1/files:stream", {
        body: JSON.stringify({ chunks: 4, chunkBytes: 1000, contentType: "audio/wav" }),
      });
      expect(res.status).toBe(200);
      expect(res.headers["content-type"]).toBe("audio/wav");
      expect(res.headers["transfer-encoding"]).toBe("chunked");
      expect(res.headers["content-length"]).toBeUndefined();
      expect(res.body.byteLength).toBe(4000);
      expect([...res.body.subarray(0, 1000)].every((b) => b === 0)).toBe(true);
      expect([...res.body.subarray(3000)].every((b) => b === 3)).toBe(true);
      expect(res.cut).toBe(false);
    });

    it("cuts the response when the stream fails after the first bytes", async () => {
      const res = await send(server.url, "POST", "/v1/files:stream", {
        body: JSON.stringify({
          chunks: 4,
          chunkBytes: 1000,
          contentType: "audio/wav",
          failAfter: 2,
        }),
      });
      expect(res.status).toBe(200);
      // Whatever was written before the failure may arrive; the end never does.
      expect(res.body.byteLength).toBeGreaterThanOrEqual(1000);
      expect(res.body.byteLength).toBeLessThan(4000);
      expect(res.cut).toBe(true);
    });
  });
});

describe("REST transcoder over HTTP/2 (h2c)", () => {
  let server: RestTestServer;
  let session: http2.ClientHttp2Session;
  beforeAll(async () => {
    server = await startRestTestServer();
    session = http2.connect(server.url);
  });
  afterAll(async () => {
    session?.close();
    await server?.close();
  });

  /** One HTTP/2 request; resolves with status, headers, body and whether the stream was reset. */
  const h2 = (method: string, path: string, body?: string) =>
    new Promise<{
      status: number;
      headers: http2.IncomingHttpHeaders;
      body: Buffer;
      reset: boolean;
    }>((resolve) => {
      const stream = session.request({ ":method": method, ":path": path });
      const chunks: Buffer[] = [];
      let headers: http2.IncomingHttpHeaders = {};
      let reset = false;
      stream.on("response", (h) => {
        headers = h;
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", () => {
        reset = true;
      });
      stream.on("close", () => {
        reset ||= stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR;
        resolve({
          status: Number(headers[":status"]),
          headers,
          body: Buffer.concat(chunks),
          reset,
        });
      });
      stream.end(body);
    });

  it("serves a unary call and an error", async () => {
    const ok = await h2("GET", "/v1/shelves/s1");
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body.toString())).toMatchObject({ name: "shelves/s1" });
    const missing = await h2("GET", "/v1/shelves/missing");
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body.toString())).toMatchObject({ code: Code.NotFound });
  });

  it("streams raw bytes, and resets the stream when it fails midway", async () => {
    const whole = await h2("POST", "/v1/files:stream", '{"chunks":3,"chunkBytes":500}');
    expect(whole.status).toBe(200);
    expect(whole.body.byteLength).toBe(1500);
    expect(whole.reset).toBe(false);
    const failed = await h2(
      "POST",
      "/v1/files:stream",
      '{"chunks":3,"chunkBytes":500,"failAfter":1}',
    );
    expect(failed.status).toBe(200);
    expect(failed.body.byteLength).toBeLessThan(1500);
    expect(failed.reset).toBe(true);
  });
});

describe("REST transcoder with unknown query parameters ignored", () => {
  let server: RestTestServer;
  beforeAll(async () => {
    server = await startRestTestServer({ unknownQuery: "ignore" });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("serves the call and drops the unknown parameter", async () => {
    const res = await send(server.url, "GET", "/v1/shelves/s1/books?page_size=5&bogus=1");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ request: { pageSize: 5 } });
    expect(server.calls.map((c) => c.rpc)).toEqual(["ListBooks"]);
  });

  it("still refuses a bad value of a known parameter", async () => {
    const res = await send(server.url, "GET", "/v1/shelves/s1/books?page_size=x&bogus=1");
    expect(res.status).toBe(400);
  });
});
