import {
  create,
  type DescField,
  type DescMessage,
  fromJson,
  type JsonObject,
  type JsonValue,
  type Message,
  type MessageInitShape,
  ScalarType,
} from "@bufbuild/protobuf";
import { reflect } from "@bufbuild/protobuf/reflect";
import { Code, ConnectError } from "@connectrpc/connect";
import { createJsonLimitScanner, isJsonLimitError } from "../input-limits/json-limits.js";
import type { PathBindings } from "./path-template.js";
import { isHttpBody, type RestBinding, resolveFieldPath } from "./route-table.js";

/** What to do with a query parameter that names no field the query may set. */
export type UnknownQueryPolicy = "reject" | "ignore";

/** Well-known types whose proto3 JSON form is one string, so a query parameter can carry them. */
const STRING_WKTS = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
]);
const WRAPPER_WKTS = new Set(
  ["Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes"].map(
    (t) => `google.protobuf.${t}Value`,
  ),
);

/** A request as it arrived over HTTP, body already read (bounded by the caller). */
export interface RestRequestParts {
  /** Path variable values from the matched template. */
  bindings: PathBindings;
  /** The parsed query string. */
  query: URLSearchParams;
  /** The body bytes (empty when none was sent). */
  body: Uint8Array;
  /** The request's Content-Type, for `google.api.HttpBody` bodies. */
  contentType: string;
  /** What to do with unknown query parameters. */
  unknownQuery: UnknownQueryPolicy;
  /** Deepest JSON nesting of the body (setting maxJsonDepth). */
  maxJsonDepth: number;
}

const invalid = (message: string) => new ConnectError(message, Code.InvalidArgument);

/**
 * Builds the request message of `binding`'s RPC from the path, the query and the body, per
 * `google.api.http`: `body: "*"` takes the whole message from the JSON body, `body: "field"` that
 * field (raw bytes when it is a `google.api.HttpBody`), and the query fills the rest (nested
 * fields by dotted names, repeated fields by repeating the parameter, enums by name or number,
 * well-known types in their proto3 JSON string form). Path values win over body values. JSON is
 * read with protobuf-es `fromJson`, so proto names and lowerCamel names both work.
 * Throws INVALID_ARGUMENT naming what was wrong.
 */
export function buildRequestMessage(binding: RestBinding, parts: RestRequestParts): Message {
  const input = binding.method.input;
  let raw: { field: DescField | undefined; contentType: string; data: Uint8Array } | undefined;
  let json: JsonObject = {};
  if (binding.body === "*") {
    if (isHttpBody(input)) {
      raw = { field: undefined, contentType: parts.contentType, data: parts.body };
    } else {
      const value = parseJsonBody(parts.body, parts.maxJsonDepth);
      if (value !== undefined) {
        if (!isObject(value)) throw invalid("the request body must be a JSON object");
        json = value;
      }
    }
  } else if (binding.body) {
    const field = binding.body;
    if (field.fieldKind === "message" && isHttpBody(field.message)) {
      raw = { field, contentType: parts.contentType, data: parts.body };
    } else {
      const value = parseJsonBody(parts.body, parts.maxJsonDepth);
      if (value !== undefined) json[field.name] = value;
    }
  } else if (parts.body.byteLength > 0) {
    throw invalid(`${binding.httpMethod} ${binding.template.source} takes no request body`);
  }

  const pathFields = new Set(binding.template.variables.map((v) => v.fieldPath.join(".")));
  const unknown: string[] = [];
  const seen = new Map<string, JsonValue[]>();
  for (const [key, value] of parts.query) {
    const path = key.split(".");
    const field = resolveFieldPath(input, path);
    const names = field ? namePath(input, path) : undefined;
    const bound =
      !field ||
      !names ||
      binding.body === "*" ||
      (binding.body !== undefined && names[0] === binding.body.name) ||
      pathFields.has(names.join(".")) ||
      [...pathFields].some((p) => names.join(".").startsWith(`${p}.`));
    if (bound) {
      unknown.push(key);
      continue;
    }
    const converted = queryValue(field, value, key);
    const joined = names.join(".");
    const list = seen.get(joined) ?? [];
    if (field.fieldKind !== "list" && list.length > 0) {
      throw invalid(`query parameter "${key}" is given more than once but is not repeated`);
    }
    list.push(converted);
    seen.set(joined, list);
    setPath(json, input, names, field.fieldKind === "list" ? list : converted);
  }
  if (unknown.length > 0 && parts.unknownQuery === "reject") {
    throw invalid(
      `unknown query parameter${unknown.length > 1 ? "s" : ""} ` +
        `${unknown.map((k) => `"${k}"`).join(", ")} for ${binding.httpMethod} ` +
        `${binding.template.source} (VOXGATE_REST_UNKNOWN_QUERY=ignore allows them)`,
    );
  }
  for (const [dotted, value] of parts.bindings) {
    const path = dotted.split(".");
    const field = resolveFieldPath(input, path);
    const names = namePath(input, path);
    if (!field || !names) continue; // checked when the table was built
    setPath(json, input, names, queryValue(field, value, `{${dotted}}`));
  }

  let message: Message;
  try {
    message = fromJson(input, json);
  } catch (err) {
    throw invalid(`bad request: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (raw) {
    // The field's own descriptor, so a second copy of google/api (test/gen) works alike.
    const schema = raw.field?.message ?? input;
    const httpBody = create(schema, {
      contentType: raw.contentType || "application/octet-stream",
      data: raw.data,
    } as MessageInitShape<DescMessage>);
    if (!raw.field) return httpBody;
    reflect(input, message).set(raw.field, reflect(schema, httpBody));
  }
  return message;
}

/**
 * Parses a JSON body (empty: none); refuses nesting deeper than `maxDepth` with the scanner every
 * JSON entry point shares, before `JSON.parse` builds anything.
 */
function parseJsonBody(body: Uint8Array, maxDepth: number): JsonValue | undefined {
  try {
    // The transcoder read the body under the request byte limit already.
    createJsonLimitScanner({ maxDepth, maxBytes: Number.POSITIVE_INFINITY }).push(body);
  } catch (err) {
    if (isJsonLimitError(err)) throw invalid(err.message);
    throw err;
  }
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw invalid(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

function isObject(value: JsonValue): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Proto field names along `path` (which may use lowerCamel names). */
function namePath(message: DescMessage, path: readonly string[]): string[] | undefined {
  const names: string[] = [];
  for (let i = 0; i < path.length; i++) {
    const field = resolveFieldPath(message, path.slice(0, i + 1));
    if (!field) return undefined;
    names.push(field.name);
  }
  return names;
}

/** Sets `value` at `names` in `json`, creating objects; an existing lowerCamel key is replaced. */
function setPath(json: JsonObject, message: DescMessage, names: string[], value: JsonValue): void {
  let target = json;
  for (const [i, name] of names.entries()) {
    const field = resolveFieldPath(message, names.slice(0, i + 1));
    if (field && field.jsonName !== name && field.jsonName in target) {
      target[name] = target[field.jsonName] ?? null;
      delete target[field.jsonName];
    }
    if (i === names.length - 1) {
      target[name] = value;
      return;
    }
    const next = target[name];
    if (!next || !isObject(next)) {
      const created: JsonObject = {};
      target[name] = created;
      target = created;
    } else {
      target = next;
    }
  }
}

/** A query or path string as the JSON value `fromJson` expects for `field`. */
function queryValue(field: DescField, value: string, where: string): JsonValue {
  switch (field.fieldKind) {
    case "scalar":
      return scalarValue(field.scalar, value, where);
    case "enum":
      return /^-?\d+$/.test(value) ? Number(value) : value;
    case "message":
      return messageValue(field.message, value, where);
    case "list":
      if (field.listKind === "scalar") return scalarValue(field.scalar, value, where);
      if (field.listKind === "enum") return /^-?\d+$/.test(value) ? Number(value) : value;
      return messageValue(field.message, value, where);
    case "map":
      throw invalid(`${where}: map fields cannot be set from the query string`);
  }
}

function messageValue(message: DescMessage, value: string, where: string): JsonValue {
  if (STRING_WKTS.has(message.typeName)) return value;
  if (WRAPPER_WKTS.has(message.typeName)) {
    const inner = message.fields[0];
    if (inner?.fieldKind === "scalar") return scalarValue(inner.scalar, value, where);
  }
  throw invalid(`${where}: ${message.typeName} cannot be set from the query string`);
}

function scalarValue(type: ScalarType, value: string, where: string): JsonValue {
  if (type === ScalarType.BOOL) {
    if (value === "true" || value === "1") return true;
    if (value === "false" || value === "0") return false;
    throw invalid(`${where}: expected true or false, got "${value}"`);
  }
  // Numbers, 64-bit integers and base64 bytes are all accepted as JSON strings by fromJson.
  return value;
}
