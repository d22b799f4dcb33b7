import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { serviceAccess } from "../auth/scopes.js";
import {
  type HttpRouteSpec,
  openApiTemplate,
  templateVariables,
} from "../gateway/http-route-spec.js";
import {
  isHttpBody,
  openApiPath,
  type RestBinding,
  type RouteTable,
} from "../transcoding/route-table.js";
import {
  createSchemaCollector,
  type JsonSchema,
  type ProtoComments,
  type SchemaCollector,
  schemaRef,
} from "./proto-json-schema.js";

/** One operation of an OpenAPI path item, as plain JSON. */
export type OpenApiOperation = { [key: string]: unknown };

/** An operation described by hand (a frontend that is not generated from annotations). */
export interface ExtraOperation {
  /** OpenAPI path, e.g. `/v1/audio/speech`. */
  path: string;
  /** HTTP method, lower case. */
  method: "get" | "post" | "put" | "patch" | "delete" | "head";
  /** The operation object. */
  operation: OpenApiOperation;
}

/** Options of {@link createOpenApiDocument}. */
export interface OpenApiDocumentOptions {
  /** The REST transcoder's route table: each binding becomes one operation. */
  table: RouteTable;
  /** Operations served by other frontends (OpenAI, health, metrics). */
  extra: readonly ExtraOperation[];
  /** Proto comments, which become summaries and descriptions. @default none */
  comments?: ProtoComments;
  /** API version shown in `info.version`. */
  version: string;
  /** Component schemas the extra operations refer to, by name. @default none */
  extraSchemas?: Record<string, JsonSchema>;
  /** Descriptions of the extra operations' tags, by tag name. @default none */
  extraTags?: Record<string, string>;
}

/** Name of the security scheme: `Authorization: Bearer <token>`. */
export const kBearerScheme = "bearer";

/** Content types of raw (`google.api.HttpBody`) answers, by `Service.Method`. */
const RAW_RESPONSE_TYPES: Record<string, string[]> = {
  "voxgate.v1.TtsService.Synthesize": ["audio/wav", "audio/mpeg", "audio/L16"],
  "voxgate.v1.TtsService.StreamSynthesize": ["audio/wav", "audio/mpeg", "audio/L16"],
  "voxgate.v1.JobService.GetJobOutput": ["audio/wav", "audio/mpeg", "application/json"],
};
/** Content types of raw request bodies, by `Service.Method`. */
const RAW_REQUEST_TYPES: Record<string, string[]> = {
  "voxgate.v1.VoiceService.AnalyzeAudio": ["audio/*"],
};
const BINARY: JsonSchema = { type: "string", format: "binary" };
/** Well-known types a query parameter can carry (their JSON form is one string or number). */
const QUERY_MESSAGES = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  ...["Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes"].map(
    (t) => `google.protobuf.${t}Value`,
  ),
]);
/** The HTTP methods an OpenAPI path item can describe. */
const OPENAPI_METHODS = new Set([
  "get",
  "put",
  "post",
  "delete",
  "options",
  "head",
  "patch",
  "trace",
]);
/** Deepest nesting of query parameter names (`a.b.c`) described. */
const MAX_QUERY_DEPTH = 3;

/**
 * Builds the OpenAPI 3.1 document of the public REST surface from the transcoder's route table
 * (paths and path, query and body parameters as the `google.api.http` annotations map them;
 * schemas from the message descriptors in their proto3 JSON form; `google.api.HttpBody` as raw
 * bytes; server streams as NDJSON or server-sent events; errors as `google.rpc.Status`; the
 * bearer scope each route needs) plus the hand-described `extra` operations. Each route is one
 * operation: a path and method described twice is an error.
 * @throws Error naming the path and method when two operations collide.
 */
export function createOpenApiDocument(options: OpenApiDocumentOptions): Record<string, unknown> {
  const comments = options.comments ?? (() => undefined);
  const schemas = createSchemaCollector(comments);
  const paths: Record<string, Record<string, OpenApiOperation>> = {};
  const add = (path: string, method: string, operation: OpenApiOperation) => {
    paths[path] ??= {};
    const item = paths[path];
    if (item[method])
      throw new Error(`OpenAPI: ${method.toUpperCase()} ${path} is described twice`);
    item[method] = operation;
  };
  const operationIds = new Map<string, number>();
  const tags = new Map<string, string>();
  for (const binding of options.table.bindings) {
    const service = binding.method.parent;
    const tag = service.name;
    tags.set(tag, comments(service.typeName) ?? "");
    const base = `${service.name}_${binding.method.name}`;
    const seen = operationIds.get(base) ?? 0;
    operationIds.set(base, seen + 1);
    const operationId = seen === 0 ? base : `${base}_${seen + 1}`;
    const method = binding.httpMethod.toLowerCase();
    add(
      openApiPath(binding),
      // OpenAPI has no custom HTTP methods: such a binding is kept as an `x-method-<name>`
      // extension of its path item, which tools ignore.
      OPENAPI_METHODS.has(method) ? method : `x-method-${method}`,
      restOperation(binding, operationId, tag, schemas, comments),
    );
  }
  for (const extra of options.extra) {
    add(extra.path, extra.method, extra.operation);
    for (const tag of (extra.operation.tags as string[] | undefined) ?? []) {
      tags.set(tag, options.extraTags?.[tag] ?? tags.get(tag) ?? "");
    }
  }

  return {
    openapi: "3.1.0",
    info: {
      title: "voxgate",
      version: options.version,
      summary: "Typed RPC gateway between cloud applications and text-to-speech GPU machines.",
      description:
        "The REST/JSON routes are generated from the `google.api.http` annotations of the " +
        "voxgate.v1 protos; the same services answer over Connect, gRPC and gRPC-Web at " +
        "`/<package>.<Service>/<Method>` (gRPC server reflection lists them). Send " +
        "`Authorization: Bearer <token>`; each route names the token scope it needs. " +
        "`x-voxgate-timeout-ms` sets a call's deadline.",
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    servers: [{ url: "/" }],
    tags: [...tags.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, description]) => ({ name, ...(description ? { description } : {}) })),
    paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => a.localeCompare(b))),
    components: {
      schemas: sortedObject({
        ...schemas.components(),
        ...STATUS_SCHEMAS,
        ...options.extraSchemas,
      }),
      parameters: {
        TimeoutMs: {
          name: "x-voxgate-timeout-ms",
          in: "header",
          required: false,
          description:
            "Deadline of the call in milliseconds; longer ones are cut to the gateway's " +
            "maximum (VOXGATE_MAX_TIMEOUT_MS), none means VOXGATE_DEFAULT_TIMEOUT_MS.",
          schema: { type: "integer", minimum: 1 },
        },
      },
      responses: {
        RpcError: {
          description:
            "The call failed: a `google.rpc.Status` with the gRPC code, and the HTTP status " +
            "grpc-gateway uses for it (400, 401, 403, 404, 409, 429, 499, 500, 501, 503, 504).",
          content: { "application/json": { schema: schemaRef("google.rpc.Status") } },
        },
      },
      securitySchemes: {
        [kBearerScheme]: {
          type: "http",
          scheme: "bearer",
          description:
            "A voxgate client token. Its scopes (tts, voices, jobs, admin, metrics, storyforge) " +
            "decide which routes it opens; each operation lists the one it needs.",
        },
      },
    },
  };
}

/** `google.rpc.Status` and `google.protobuf.Any` as REST error bodies carry them. */
const STATUS_SCHEMAS: Record<string, JsonSchema> = {
  "google.rpc.Status": {
    type: "object",
    description: "An error: the gRPC code, a message for people, and typed details.",
    properties: {
      code: {
        type: "integer",
        format: "int32",
        description: "gRPC status code (3 INVALID_ARGUMENT, 5 NOT_FOUND, 16 UNAUTHENTICATED, …).",
      },
      message: { type: "string" },
      details: { type: "array", items: schemaRef("google.protobuf.Any") },
    },
    required: ["code", "message"],
  },
  "google.protobuf.Any": {
    type: "object",
    properties: { "@type": { type: "string" } },
    required: ["@type"],
    additionalProperties: true,
  },
};

/**
 * The operations of hand-written routes, from the declarations their frontends serve them from:
 * the path under `basePath`, a path parameter per template variable (those spanning segments
 * with a pattern that allows slashes) unless the declaration describes it, and the security of
 * the route's service (none for open routes).
 */
export function routeOperations(specs: readonly HttpRouteSpec[], basePath = ""): ExtraOperation[] {
  return specs.map((spec) => {
    const { parameters = [], ...doc } = spec.doc;
    const described = new Set(
      (parameters as Array<{ name?: string; in?: string }>)
        .filter((p) => p.in === "path")
        .map((p) => p.name),
    );
    const pathParameters = templateVariables(spec.path)
      .filter((v) => !described.has(v.name))
      .map((v) => ({
        name: v.name,
        in: "path",
        required: true,
        schema: v.multi ? { type: "string", pattern: "^.+$" } : { type: "string" },
      }));
    const all = [...pathParameters, ...parameters];
    return {
      path: openApiTemplate(spec.path, basePath),
      method: spec.method.toLowerCase() as ExtraOperation["method"],
      operation: {
        ...doc,
        ...(all.length > 0 ? { parameters: all } : {}),
        security: spec.service === undefined ? [] : securityOf(spec.service),
      },
    };
  });
}

export { openApiPath };

/** The security requirement of a service: its scope, or none for open services. */
export function securityOf(serviceTypeName: string): Array<Record<string, string[]>> {
  const access = serviceAccess(serviceTypeName);
  return access.kind === "scope" ? [{ [kBearerScheme]: [access.scope] }] : [];
}

function restOperation(
  binding: RestBinding,
  operationId: string,
  tag: string,
  schemas: SchemaCollector,
  comments: ProtoComments,
): OpenApiOperation {
  const method = binding.method;
  const rpc = `${method.parent.typeName}.${method.name}`;
  const text = comments(rpc);
  const summary = text?.split(/\n\s*\n/)[0]?.replace(/\s*\n\s*/g, " ");
  const pathFields = new Set(binding.template.variables.map((v) => v.fieldPath.join(".")));

  const parameters: unknown[] = binding.template.variables.map((variable) => {
    const field = fieldAt(method.input, variable.fieldPath);
    const segments = binding.template.segments.slice(variable.start, variable.end);
    const multi = segments.length > 1 || segments[0]?.kind === "multi";
    // `{name=shelves/*}`: the value is `shelves/<id>`, sent with its slash as it is.
    const pattern = multi
      ? `^${segments
          .map((seg) =>
            seg.kind === "literal"
              ? seg.value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
              : seg.kind === "single"
                ? "[^/]+"
                : ".+",
          )
          .join("/")}$`
      : undefined;
    const description = field ? comments(`${field.parent.typeName}.${field.name}`) : undefined;
    return {
      name: variable.fieldPath.join("."),
      in: "path",
      required: true,
      ...(description || multi
        ? {
            description: [description, multi ? `Spans several path segments (${pattern}).` : ""]
              .filter(Boolean)
              .join(" "),
          }
        : {}),
      schema: {
        ...(field ? schemas.fieldSchema(field) : { type: "string" }),
        ...(pattern ? { pattern } : {}),
      },
    };
  });
  if (binding.body !== "*") {
    const skip = binding.body ? binding.body.name : undefined;
    parameters.push(
      ...queryParameters(method.input, [], pathFields, skip, schemas, comments, new Set()),
    );
  }
  parameters.push({ $ref: "#/components/parameters/TimeoutMs" });

  const operation: OpenApiOperation = {
    operationId,
    tags: [tag],
    ...(summary ? { summary } : {}),
    ...(text && text !== summary ? { description: text } : {}),
    "x-voxgate-rpc": `/${method.parent.typeName}/${method.name}`,
    parameters,
  };
  const body = requestBody(binding, rpc, pathFields, schemas);
  if (body) operation.requestBody = body;
  operation.responses = {
    "200": successResponse(binding, rpc, schemas),
    default: { $ref: "#/components/responses/RpcError" },
  };
  operation.security = securityOf(method.parent.typeName);
  return operation;
}

function fieldAt(message: DescMessage, path: readonly string[]): DescField | undefined {
  let current: DescMessage | undefined = message;
  let field: DescField | undefined;
  for (const name of path) {
    field = current?.fields.find((f) => f.name === name || f.jsonName === name);
    if (!field) return undefined;
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return field;
}

/** Query parameters for the fields neither the path nor the body sets, nested ones dotted. */
function queryParameters(
  message: DescMessage,
  prefix: string[],
  pathFields: Set<string>,
  bodyField: string | undefined,
  schemas: SchemaCollector,
  comments: ProtoComments,
  visiting: Set<string>,
): unknown[] {
  const out: unknown[] = [];
  for (const field of message.fields) {
    const names = [...prefix, field.name];
    const dotted = names.join(".");
    if (pathFields.has(dotted) || (prefix.length === 0 && field.name === bodyField)) continue;
    if (field.fieldKind === "map") continue; // maps cannot be set from the query string
    const description = comments(`${message.typeName}.${field.name}`);
    const nested =
      field.fieldKind === "message" && !QUERY_MESSAGES.has(field.message.typeName)
        ? field.message
        : undefined;
    if (nested) {
      if (names.length >= MAX_QUERY_DEPTH || visiting.has(nested.typeName)) continue;
      visiting.add(nested.typeName);
      out.push(
        ...queryParameters(nested, names, pathFields, bodyField, schemas, comments, visiting),
      );
      visiting.delete(nested.typeName);
      continue;
    }
    if (field.fieldKind === "list" && field.listKind === "message") {
      if (!QUERY_MESSAGES.has(field.message.typeName)) continue;
    }
    out.push({
      name: dotted,
      in: "query",
      required: false,
      ...(description ? { description } : {}),
      schema: schemas.fieldSchema(field),
      ...(field.fieldKind === "list" ? { style: "form", explode: true } : {}),
    });
  }
  return out;
}

function requestBody(
  binding: RestBinding,
  rpc: string,
  pathFields: Set<string>,
  schemas: SchemaCollector,
): OpenApiOperation | undefined {
  const input = binding.method.input;
  if (binding.body === undefined) return undefined;
  if (binding.body === "*") {
    if (isHttpBody(input)) return rawBody(rpc);
    // Path values win over the body: what the path sets is left out of the body's schema.
    if (pathFields.size === 0) {
      return {
        required: false,
        content: { "application/json": { schema: schemas.messageRef(input) } },
      };
    }
    const properties: Record<string, JsonSchema> = {};
    for (const field of input.fields) {
      if (!pathFields.has(field.name)) properties[field.jsonName] = schemas.fieldSchema(field);
    }
    schemas.messageRef(input);
    return {
      required: false,
      content: {
        "application/json": {
          schema: {
            type: "object",
            description: `${input.typeName} without the fields the path sets.`,
            properties,
          },
        },
      },
    };
  }
  const field = binding.body;
  if (field.fieldKind === "message" && isHttpBody(field.message)) return rawBody(rpc);
  return {
    required: true,
    content: { "application/json": { schema: schemas.fieldSchema(field) } },
  };
}

function rawBody(rpc: string): OpenApiOperation {
  const types = RAW_REQUEST_TYPES[rpc] ?? ["application/octet-stream"];
  return {
    required: true,
    description: "The raw bytes, with their own Content-Type.",
    content: Object.fromEntries(types.map((t) => [t, { schema: BINARY }])),
  };
}

function successResponse(
  binding: RestBinding,
  rpc: string,
  schemas: SchemaCollector,
): OpenApiOperation {
  const method = binding.method;
  const output = method.output;
  const field = binding.responseBody;
  const raw =
    (!field && isHttpBody(output)) || (field?.fieldKind === "message" && isHttpBody(field.message));
  const streams =
    method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
  if (raw) {
    const types = RAW_RESPONSE_TYPES[rpc] ?? ["application/octet-stream"];
    return {
      description: streams
        ? "Raw bytes as they are produced (chunked), with their own Content-Type. A failure " +
          "midway cuts the response, so a short body never looks whole."
        : "The raw bytes, with their own Content-Type.",
      content: Object.fromEntries(types.map((t) => [t, { schema: BINARY }])),
    };
  }
  const payload = field ? schemas.fieldSchema(field) : schemas.messageRef(output);
  if (!streams) {
    return { description: "OK", content: { "application/json": { schema: payload } } };
  }
  return {
    description:
      'A stream of messages: newline-delimited JSON (`{"result": …}` per line, an error after ' +
      'the first message as a last `{"error": google.rpc.Status}` line), or server-sent ' +
      "events when the request accepts `text/event-stream` (`data: <message>` per event, " +
      "`event: error` at a failure).",
    content: {
      "application/x-ndjson": {
        schema: {
          type: "object",
          properties: { result: payload, error: schemaRef("google.rpc.Status") },
        },
      },
      "text/event-stream": {
        schema: { type: "string", description: "`data: <JSON message>` events." },
      },
    },
  };
}

function sortedObject<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}
