/**
 * Properties of the REST transcoder (fast-check): any path built from a template matches it and
 * gives back the variable values; a path with one literal changed does not match; any Book sent as
 * JSON (proto names or lowerCamel) and any ListBooks query comes back from the service unchanged,
 * over a real HTTP server.
 */
import { create, toJson } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import * as fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { matchPathTemplate, parsePathTemplate } from "../../services/transcoding/index.js";
import {
  type Book,
  BookSchema,
  Genre,
  ListBooksRequestSchema,
} from "../gen/voxgate/testing/v1/bookshelf_pb.js";
import { type RestTestServer, send, startRestTestServer } from "./rest-test-server.js";

type Piece =
  | { kind: "literal"; text: string }
  | { kind: "var"; name: string; prefix: string | undefined }
  | { kind: "rest"; name: string };

const literal = fc.stringMatching(/^[a-z0-9_-]{1,8}$/);
const value = fc.string({ minLength: 1, maxLength: 12, unit: "grapheme" });

/** A template: pieces (variables named v0, v1, …), maybe a `**` tail, maybe a verb. */
const templateArb = fc
  .record({
    pieces: fc.array(
      fc.oneof(
        literal.map((text) => ({ kind: "literal", text }) as Piece),
        fc
          .option(literal, { nil: undefined })
          .map((prefix) => ({ kind: "var", name: "", prefix }) as Piece),
      ),
      { minLength: 1, maxLength: 5 },
    ),
    rest: fc.boolean(),
    verb: fc.option(literal, { nil: undefined }),
  })
  .map(({ pieces, rest, verb }) => {
    const all: Piece[] = rest ? [...pieces, { kind: "rest", name: "" }] : pieces;
    let n = 0;
    for (const piece of all) if (piece.kind !== "literal") piece.name = `v${n++}`;
    return { pieces: all, verb };
  });

function templateText(pieces: Piece[], verb: string | undefined): string {
  const parts = pieces.map((p) =>
    p.kind === "literal"
      ? p.text
      : p.kind === "rest"
        ? `{${p.name}=**}`
        : p.prefix
          ? `{${p.name}=${p.prefix}/*}`
          : `{${p.name}}`,
  );
  return `/${parts.join("/")}${verb ? `:${verb}` : ""}`;
}

describe("path template properties", () => {
  it("a path built from a template matches it and yields the values", () => {
    fc.assert(
      fc.property(
        templateArb,
        fc.array(value, { minLength: 6, maxLength: 6 }),
        fc.array(value, { minLength: 0, maxLength: 4 }),
        ({ pieces, verb }, values, restSegments) => {
          const template = parsePathTemplate(templateText(pieces, verb));
          const expected = new Map<string, string>();
          const parts: string[] = [];
          for (const [i, piece] of pieces.entries()) {
            if (piece.kind === "literal") {
              parts.push(piece.text);
            } else if (piece.kind === "var") {
              const v = values[i % values.length] ?? "x";
              parts.push(
                piece.prefix ? `${piece.prefix}/${encodeURIComponent(v)}` : encodeURIComponent(v),
              );
              // A multi-segment variable keeps %2F encoded; a single one decodes it.
              expected.set(
                piece.name,
                piece.prefix ? `${piece.prefix}/${v.split("/").join("%2F")}` : v,
              );
            } else {
              parts.push(...restSegments.map((s) => encodeURIComponent(s)));
              expected.set(piece.name, restSegments.map((s) => s.split("/").join("%2F")).join("/"));
            }
          }
          const path = `/${parts.join("/")}${verb ? `:${verb}` : ""}`;
          const got = matchPathTemplate(template, path);
          expect(got, `${template.source} vs ${path}`).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a path with one literal changed does not match", () => {
    fc.assert(
      fc.property(templateArb, value, ({ pieces, verb }, v) => {
        const index = pieces.findIndex((p) => p.kind === "literal");
        fc.pre(index >= 0);
        const template = parsePathTemplate(templateText(pieces, verb));
        const parts = pieces.map((p, i) =>
          p.kind === "literal"
            ? i === index
              ? `${p.text}X`
              : p.text
            : p.kind === "var"
              ? p.prefix
                ? `${p.prefix}/${encodeURIComponent(v)}`
                : encodeURIComponent(v)
              : "tail",
        );
        const path = `/${parts.join("/")}${verb ? `:${verb}` : ""}`;
        expect(matchPathTemplate(template, path)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});

describe("JSON round trips over HTTP", () => {
  let server: RestTestServer;
  beforeAll(async () => {
    server = await startRestTestServer({ maxRequestBytes: 1024 * 1024 });
  });
  afterAll(async () => {
    await server?.close();
  });

  const text = fc.string({ maxLength: 20, unit: "grapheme" });
  // "." and ".." are dot segments: every URL parser (the client's included) removes them.
  const pathValue = value.filter((v) => v !== "." && v !== "..");
  const bookArb = fc.record({
    title: text,
    genre: fc.constantFrom(Genre.UNSPECIFIED, Genre.FICTION, Genre.POETRY),
    pages: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    author: fc.option(
      fc.record({ name: text, born: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }),
      {
        nil: undefined,
      },
    ),
    tags: fc.array(text, { maxLength: 4 }),
  });

  it("a Book in the body comes back as it was sent, path fields on top", async () => {
    await fc.assert(
      fc.asyncProperty(
        bookArb,
        pathValue,
        pathValue,
        fc.boolean(),
        async (init, shelf, id, protoNames) => {
          const sent: Book = create(BookSchema, init);
          const res = await send(
            server.url,
            "PATCH",
            `/v1/shelves/${encodeURIComponent(shelf)}/books/${encodeURIComponent(id)}`,
            { body: JSON.stringify(toJson(BookSchema, sent, { useProtoFieldName: protoNames })) },
          );
          expect(res.status, res.body.toString()).toBe(200);
          expect(res.json).toEqual(toJson(BookSchema, { ...sent, shelf, id }));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("a ListBooks query comes back as the message the service received", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          pageSize: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
          genres: fc.array(fc.constantFrom(Genre.FICTION, Genre.POETRY), { maxLength: 3 }),
          tags: fc.array(text, { maxLength: 3 }),
          author: text,
          updatedAfterMs: fc.integer({ min: 0, max: 4_000_000_000_000 }),
          // -0 is a JSON 0: the wire cannot tell them apart.
          minRating: fc
            .double({ noNaN: true, noDefaultInfinity: true })
            .filter((d) => !Object.is(d, -0)),
          includeDrafts: fc.boolean(),
          offset: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
          byNumber: fc.boolean(),
        }),
        async (q) => {
          const expected = create(ListBooksRequestSchema, {
            parent: "shelves/p",
            pageSize: q.pageSize,
            genres: q.genres,
            tags: q.tags,
            filter: { author: q.author },
            updatedAfter: timestampFromMs(q.updatedAfterMs),
            minRating: q.minRating,
            includeDrafts: q.includeDrafts,
            offset: q.offset,
          });
          const params = new URLSearchParams();
          params.set("page_size", String(q.pageSize));
          for (const g of q.genres)
            params.append("genres", q.byNumber ? String(g) : `GENRE_${Genre[g]}`);
          for (const t of q.tags) params.append("tags", t);
          params.set("filter.author", q.author);
          params.set("updatedAfter", new Date(q.updatedAfterMs).toISOString());
          params.set("min_rating", String(q.minRating));
          params.set("include_drafts", String(q.includeDrafts));
          params.set("offset", String(q.offset));
          const res = await send(server.url, "GET", `/v1/shelves/p/books?${params}`);
          expect(res.status, res.body.toString()).toBe(200);
          expect(res.json).toEqual({ request: toJson(ListBooksRequestSchema, expected) });
        },
      ),
      { numRuns: 60 },
    );
  });
});
