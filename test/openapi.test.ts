/**
 * The OpenAPI document: the committed openapi/openapi.json is exactly what `npm run gen` writes
 * now, an OpenAPI validator (@seriousme/openapi-schema-validator, the 3.1 schema) accepts it,
 * every REST route of the transcoder's route table is in it exactly once, and the proto3 JSON
 * mapping, raw bodies, streams, errors and scopes are described as the gateway serves them, the
 * compatibility surfaces (relay, StoryForge, OpenAI) and hand-written routes included.
 */
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { beforeAll, describe, expect, it } from "vitest";
import { OPENAPI_FILE, renderOpenApi } from "../scripts/gen-openapi.js";
import { REST_SERVICES } from "../services/gateway/public-services.js";
import { openApiPath } from "../services/openapi/index.js";
import { createRouteTable } from "../services/transcoding/index.js";

type Json = Record<string, unknown>;
type Operation = Json & {
  parameters?: Array<Json>;
  responses: Record<string, Json>;
  security: Array<Record<string, string[]>>;
  requestBody?: Json;
};

const committed = readFileSync(OPENAPI_FILE, "utf8");
const doc = JSON.parse(committed) as {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json & { properties?: Record<string, Json> }> };
};
const op = (path: string, method: string): Operation => {
  const found = doc.paths[path]?.[method];
  if (!found) throw new Error(`no ${method} ${path}`);
  return found;
};
const prop = (schema: string, field: string) => doc.components.schemas[schema]?.properties?.[field];
const mediaTypes = (response: Json | undefined) =>
  Object.keys((response?.content ?? {}) as Json).sort();

describe("openapi/openapi.json", () => {
  let fresh = "";
  beforeAll(() => {
    // buf build of the workspace (for comments) on a loaded machine.
    fresh = renderOpenApi();
  }, 120_000);

  it("is exactly what npm run gen writes from the protos and route table now", () => {
    expect(fresh === committed, "openapi/openapi.json is out of date: run npm run gen").toBe(true);
  });

  it("is valid OpenAPI 3.1 by the specification's schema", async () => {
    const validator = new Validator();
    // A copy: resolveRefs replaces references in place.
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    // Every reference points at a component that exists.
    expect(() => validator.resolveRefs()).not.toThrow();
    const refs = [...committed.matchAll(/"\$ref": "#\/components\/(\w+)\/([^"]+)"/g)];
    expect(refs.length).toBeGreaterThan(100);
    for (const [, kind = "", name = ""] of refs) {
      expect(
        (doc.components as Record<string, Json>)[kind]?.[name],
        `${kind}/${name}`,
      ).toBeDefined();
    }
  });

  it("the validator refuses a broken document (so the check above can fail)", async () => {
    const broken = structuredClone(doc) as Json & { paths: Record<string, Json> };
    broken.paths["/v1/voices"] = { get: { responses: { "200": { content: {} } } } };
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it("has every REST route of the route table exactly once", () => {
    const table = createRouteTable(REST_SERVICES);
    expect(table.bindings.length).toBeGreaterThan(30);
    const generated = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([, operation]) => "x-voxgate-rpc" in operation)
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    const expected = table.bindings.map((b) => `${b.httpMethod} ${openApiPath(b)}`);
    expect(generated.sort()).toEqual([...expected].sort());
    expect(new Set(expected).size).toBe(expected.length);
    for (const binding of table.bindings) {
      const operation = op(openApiPath(binding), binding.httpMethod.toLowerCase());
      expect(operation["x-voxgate-rpc"]).toBe(
        `/${binding.method.parent.typeName}/${binding.method.name}`,
      );
    }
    const ids = Object.values(doc.paths).flatMap((item) =>
      Object.values(item).map((o) => o.operationId),
    );
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("maps fields by proto3 JSON: lowerCamel names, int64 as string, enums by name, WKTs", () => {
    expect(prop("voxgate.v1.Prompt", "sizeBytes")).toMatchObject({
      type: "string",
      format: "int64",
    });
    expect(prop("voxgate.v1.Prompt", "size_bytes")).toBeUndefined();
    expect(prop("voxgate.v1.Prompt", "createTime")).toMatchObject({
      $ref: "#/components/schemas/google.protobuf.Timestamp",
    });
    expect(doc.components.schemas["google.protobuf.Timestamp"]).toMatchObject({
      type: "string",
      format: "date-time",
    });
    const encoding = doc.components.schemas["voxgate.v1.AudioEncoding"];
    expect(encoding?.type).toBe("string");
    expect(encoding?.enum).toContain("AUDIO_ENCODING_WAV");
    // Proto comments become descriptions, of fields and of query parameters.
    expect(prop("voxgate.v1.ListVoicesResponse", "nextPageToken")?.description).toBeTruthy();
    const pageSize = op("/v1/voices", "get").parameters?.find((p) => p.name === "page_size");
    expect(String(pageSize?.description)).toContain("the maximum is 500");
  });

  it("maps path, query and body as the annotations do", () => {
    const get = op("/v1/voices/{voice_id}", "get");
    expect(get.parameters?.[0]).toMatchObject({ name: "voice_id", in: "path", required: true });
    expect(get.requestBody).toBeUndefined();
    const list = op("/v1/voices", "get");
    const query = (list.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name);
    expect(query).toEqual(["page_size", "page_token", "type", "engine", "language"]);
    // body "*" with a path variable: the body leaves out what the path sets.
    const patch = op("/v1/voices/{voice_id}", "patch");
    const body = (patch.requestBody?.content as Json | undefined)?.["application/json"] as Json;
    expect((body.schema as Json).properties).not.toHaveProperty("voiceId");
  });

  it("describes HttpBody as raw bytes with content types, and streams as NDJSON and SSE", () => {
    expect(mediaTypes(op("/v1/speech:synthesize", "post").responses["200"])).toEqual([
      "audio/L16",
      "audio/mpeg",
      "audio/wav",
    ]);
    expect(mediaTypes(op("/v1/audio:analyze", "post").requestBody)).toEqual(["audio/*"]);
    const watch = op("/v1/jobs/{job_id}:watch", "get").responses["200"];
    expect(mediaTypes(watch)).toEqual(["application/x-ndjson", "text/event-stream"]);
    expect(op("/v1/jobs/{job_id}", "get").responses.default).toEqual({
      $ref: "#/components/responses/RpcError",
    });
    expect(doc.components.schemas["google.rpc.Status"]?.required).toEqual(["code", "message"]);
  });

  it("names the bearer scope of each route; health and discovery need none", () => {
    expect(op("/v1/speech:synthesize", "post").security).toEqual([{ bearer: ["tts"] }]);
    expect(op("/v1/voices", "get").security).toEqual([{ bearer: ["voices"] }]);
    expect(op("/v1/jobs", "post").security).toEqual([{ bearer: ["jobs"] }]);
    expect(op("/v1/backends", "get").security).toEqual([{ bearer: ["admin"] }]);
    expect(op("/metrics", "get").security).toEqual([{ bearer: ["metrics"] }]);
    for (const path of ["/healthz", "/readyz", "/openapi.json", "/docs"]) {
      expect(op(path, "get").security, path).toEqual([]);
    }
  });

  it("describes the relay and StoryForge surfaces: bodies, error shapes and scopes", () => {
    const clone = op("/api/v1/voices/clone-prompt", "post");
    expect(clone.security).toEqual([{ bearer: ["voices"] }]);
    expect(clone.requestBody).toMatchObject({
      content: { "application/json": { schema: { required: ["name"] } } },
    });
    expect(clone.responses.default).toMatchObject({
      content: { "application/json": { schema: { $ref: "#/components/schemas/RelayError" } } },
    });
    expect(doc.components.schemas.RelayError?.required).toEqual(["error", "code"]);
    expect(op("/api/v1/debug", "get").security).toEqual([{ bearer: ["admin"] }]);
    expect(op("/api/v1/voices/prompts/{name}", "delete").parameters?.[0]).toMatchObject({
      name: "name",
      in: "path",
    });
    const tts = op("/storyforge/v1/tts", "post");
    expect(tts.security).toEqual([{ bearer: ["storyforge"] }]);
    expect(Object.keys(tts.responses).sort()).toEqual(["200", "401", "403"]);
    expect(JSON.stringify(tts.responses["200"])).toContain("StoryForgeSoftError");
    expect(op("/storyforge/ping", "get").security).toEqual([]);
    const upload = op("/v1/prompts:upload", "post");
    expect(upload.security).toEqual([{ bearer: ["voices"] }]);
    expect(mediaTypes(upload.requestBody)).toEqual(["application/octet-stream"]);
  });

  it("describes the OpenAI-compatible routes", () => {
    const speech = op("/v1/audio/speech", "post");
    expect(speech.security).toEqual([{ bearer: ["tts"] }]);
    expect(mediaTypes(speech.responses["200"])).toContain("text/event-stream");
    expect(op("/v1/audio/voices", "get").security).toEqual([{ bearer: ["voices"] }]);
    expect(op("/v1/chat/completions", "post").security).toEqual([{ bearer: ["tts"] }]);
    for (const path of ["/v1/models", "/v1/models/{id}", "/v1/audio/models"]) {
      expect(op(path, "get").security, path).toEqual([{ bearer: ["tts"] }]);
    }
  });
});
