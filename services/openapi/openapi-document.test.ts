import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { BookshelfService } from "../../test/gen/voxgate/testing/v1/bookshelf_pb.js";
import { createRouteTable } from "../transcoding/route-table.js";
import { createOpenApiDocument } from "./openapi-document.js";

// The test-only BookshelfService uses every google.api.http feature voxgate's own contracts do
// not (named and "**" segments, custom verbs and methods, PUT/PATCH, nested path fields,
// response_body, HttpBody in and out, streams), so the generator is checked on all of them.

type Json = Record<string, unknown>;
type Operation = { parameters: Json[]; requestBody?: Json; responses: Record<string, Json> };

const table = createRouteTable([BookshelfService]);
const doc = createOpenApiDocument({ table, extra: [], version: "test" }) as {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json & { properties?: Record<string, Json> }> };
};
const op = (path: string, method: string): Operation => {
  const found = doc.paths[path]?.[method];
  if (!found) throw new Error(`no ${method} ${path}: ${Object.keys(doc.paths).join(", ")}`);
  return found;
};
const param = (o: Operation, name: string) => o.parameters.find((p) => p.name === name);

describe("OpenAPI from google.api.http annotations", () => {
  it("is valid OpenAPI 3.1 for every annotation feature", async () => {
    const result = await new Validator().validate(structuredClone(doc));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
  });

  it("describes each binding once, a custom method as an extension of its path item", () => {
    const described = Object.values(doc.paths).flatMap((item) =>
      Object.values(item).filter((o) => typeof o === "object" && "x-voxgate-rpc" in o),
    );
    expect(described).toHaveLength(table.bindings.length);
    expect(doc.paths["/v1/{name}"]?.["x-method-link"]).toMatchObject({
      "x-voxgate-rpc": "/voxgate.testing.v1.BookshelfService/LinkShelf",
    });
  });

  it("gives multi-segment path variables their pattern", () => {
    expect(param(op("/v1/{name}", "get"), "name")).toMatchObject({
      in: "path",
      required: true,
      schema: { type: "string", pattern: "^shelves/[^/]+$" },
    });
    expect(param(op("/v1/files/{path}", "get"), "path")?.schema).toMatchObject({ pattern: "^.+$" });
    expect(param(op("/v1/shelves/{book.shelf}/books/{book.id}", "patch"), "book.id")).toMatchObject(
      { in: "path" },
    );
  });

  it("flattens query parameters: nested fields dotted, repeated exploded, WKTs as strings", () => {
    const list = op("/v1/{parent}/books", "get");
    const query = list.parameters.filter((p) => p.in === "query");
    expect(query.map((p) => p.name)).toEqual([
      "page_size",
      "genres",
      "tags",
      "filter.author",
      "filter.min_pages",
      "updated_after",
      "max_age",
      "min_rating",
      "include_drafts",
      "offset",
      "ids",
    ]);
    expect(param(list, "genres")).toMatchObject({
      schema: { type: "array", items: { $ref: "#/components/schemas/voxgate.testing.v1.Genre" } },
      explode: true,
    });
    expect(param(list, "offset")?.schema).toMatchObject({ type: "string", format: "int64" });
    expect(doc.components.schemas["google.protobuf.Duration"]).toMatchObject({ type: "string" });
    expect(doc.components.schemas["google.protobuf.DoubleValue"]).toMatchObject({
      type: ["number", "null"],
    });
  });

  it("maps body fields, response_body, HttpBody and streams", () => {
    // body: "book": the body is that field; the query takes the fields neither it nor the path
    // sets.
    const create = op("/v1/{parent}/books", "post");
    expect(create.requestBody).toMatchObject({
      content: {
        "application/json": { schema: { $ref: "#/components/schemas/voxgate.testing.v1.Book" } },
      },
    });
    expect(create.parameters.filter((p) => p.in === "query").map((p) => p.name)).toEqual([
      "request_id",
    ]);
    // response_body: "title".
    expect(op("/v1/{name}/title", "get").responses["200"]).toMatchObject({
      content: { "application/json": { schema: { type: "string" } } },
    });
    // HttpBody out and in.
    expect(op("/v1/files/{path}", "get").responses["200"]).toMatchObject({
      content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
    });
    expect(op("/v1/uploads/{name}", "post").requestBody).toMatchObject({
      content: { "application/octet-stream": { schema: { format: "binary" } } },
    });
    // A server stream of messages, and one of raw bytes.
    expect(
      Object.keys(op("/v1/{parent}/books:stream", "get").responses["200"]?.content as Json),
    ).toEqual(["application/x-ndjson", "text/event-stream"]);
    expect(op("/v1/files:stream", "post").responses["200"]?.description).toContain("chunked");
    // The Book message: int64 as string, nested message by reference, enum by name.
    const book = doc.components.schemas["voxgate.testing.v1.Book"]?.properties ?? {};
    expect(book.pages).toMatchObject({ type: "string", format: "int64" });
    expect(book.author).toEqual({ $ref: "#/components/schemas/voxgate.testing.v1.Author" });
    expect(doc.components.schemas["voxgate.testing.v1.Genre"]).toMatchObject({ type: "string" });
  });

  it("refuses two operations on one path and method", () => {
    expect(() =>
      createOpenApiDocument({
        table,
        extra: [{ path: "/v1/shelves/featured", method: "get", operation: {} }],
        version: "test",
      }),
    ).toThrow("GET /v1/shelves/featured is described twice");
  });
});
