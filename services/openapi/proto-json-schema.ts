import { type DescEnum, type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";

/** A JSON Schema (2020-12, the dialect of OpenAPI 3.1), as plain JSON. */
export type JsonSchema = { [key: string]: unknown };

/**
 * Leading comments of proto elements by fully-qualified name: `pkg.Message`, `pkg.Message.field`,
 * `pkg.Enum.VALUE`, `pkg.Service`, `pkg.Service.Method`. Returns undefined when there is none.
 */
export type ProtoComments = (name: string) => string | undefined;

/** Where a schema points to another: `#/components/schemas/<type name>`. */
export function schemaRef(typeName: string): JsonSchema {
  return { $ref: `#/components/schemas/${typeName}` };
}

/** Well-known types whose proto3 JSON form is not an object of their fields. */
const WELL_KNOWN: Record<string, JsonSchema> = {
  "google.protobuf.Timestamp": {
    type: "string",
    format: "date-time",
    description: "RFC 3339 time in UTC, e.g. 2026-01-02T03:04:05.678Z.",
  },
  "google.protobuf.Duration": {
    type: "string",
    pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$",
    description: 'Seconds with up to nine decimals and an "s", e.g. "1.5s".',
  },
  "google.protobuf.FieldMask": {
    type: "string",
    description: "Comma-separated lowerCamel field paths.",
  },
  "google.protobuf.Struct": { type: "object", additionalProperties: true },
  "google.protobuf.Value": { description: "Any JSON value." },
  "google.protobuf.ListValue": { type: "array", items: {} },
  "google.protobuf.NullValue": { type: "null" },
  "google.protobuf.Empty": { type: "object", additionalProperties: false },
  "google.protobuf.Any": {
    type: "object",
    properties: { "@type": { type: "string" } },
    required: ["@type"],
    additionalProperties: true,
  },
  "google.protobuf.DoubleValue": { type: ["number", "null"], format: "double" },
  "google.protobuf.FloatValue": { type: ["number", "null"], format: "float" },
  "google.protobuf.Int64Value": { type: ["string", "null"], format: "int64" },
  "google.protobuf.UInt64Value": { type: ["string", "null"], format: "uint64" },
  "google.protobuf.Int32Value": { type: ["integer", "null"], format: "int32" },
  "google.protobuf.UInt32Value": { type: ["integer", "null"], format: "uint32" },
  "google.protobuf.BoolValue": { type: ["boolean", "null"] },
  "google.protobuf.StringValue": { type: ["string", "null"] },
  "google.protobuf.BytesValue": { type: ["string", "null"], contentEncoding: "base64" },
};

/** The proto3 JSON form of one scalar type. */
export function scalarSchema(type: ScalarType): JsonSchema {
  switch (type) {
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.DOUBLE:
      return { type: "number", format: "double" };
    case ScalarType.FLOAT:
      return { type: "number", format: "float" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "uint32", minimum: 0 };
    // 64-bit integers are JSON strings in proto3 JSON (numbers are accepted on input).
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "string", format: "int64", pattern: "^-?[0-9]+$" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", format: "uint64", pattern: "^[0-9]+$" };
  }
}

/**
 * Collects the component schemas of messages and enums as their proto3 JSON mapping: fields by
 * lowerCamel JSON name, 64-bit integers as strings, enums by value name, bytes as base64,
 * well-known types in their special forms, maps as objects. Each message or enum becomes one
 * component named by its fully-qualified type name; fields refer to them with `$ref`.
 */
export interface SchemaCollector {
  /** The schema of a field's value (its `$ref`, array or map form). */
  fieldSchema(field: DescField): JsonSchema;
  /** A `$ref` to `message`'s component (added, with what it uses, on first use). */
  messageRef(message: DescMessage): JsonSchema;
  /** Every component added so far, by type name, sorted. */
  components(): Record<string, JsonSchema>;
}

/** Creates a {@link SchemaCollector}; `comments` become descriptions. */
export function createSchemaCollector(comments: ProtoComments = () => undefined): SchemaCollector {
  const components = new Map<string, JsonSchema>();

  const enumRef = (desc: DescEnum): JsonSchema => {
    if (!components.has(desc.typeName)) {
      const values = desc.values.map((v) => v.name);
      const described = desc.values
        .map((v) => [v.name, comments(`${desc.typeName}.${v.name}`)] as const)
        .filter(([, text]) => text)
        .map(([name, text]) => `- \`${name}\`: ${text?.replace(/\s*\n\s*/g, " ")}`);
      const intro = comments(desc.typeName);
      const description = [intro, described.join("\n")].filter(Boolean).join("\n\n");
      components.set(desc.typeName, {
        type: "string",
        enum: values,
        ...(description ? { description } : {}),
      });
    }
    return schemaRef(desc.typeName);
  };

  const messageRef = (desc: DescMessage): JsonSchema => {
    if (components.has(desc.typeName)) return schemaRef(desc.typeName);
    const special = WELL_KNOWN[desc.typeName];
    if (special) {
      components.set(desc.typeName, special);
      return schemaRef(desc.typeName);
    }
    // Set before the fields: a message that contains itself refers to its own component.
    const schema: JsonSchema = { type: "object" };
    components.set(desc.typeName, schema);
    const properties: Record<string, JsonSchema> = {};
    for (const field of desc.fields) {
      const value = fieldSchema(field);
      const text = comments(`${desc.typeName}.${field.name}`);
      const oneof = field.oneof ? `One of \`${field.oneof.name}\`: set at most one of them.` : "";
      const description = [text, oneof].filter(Boolean).join("\n\n");
      // A $ref with siblings is fine in 3.1 (JSON Schema 2020-12).
      properties[field.jsonName] = description ? { ...value, description } : value;
    }
    const text = comments(desc.typeName);
    Object.assign(schema, {
      ...(text ? { description: text } : {}),
      properties,
    });
    return schemaRef(desc.typeName);
  };

  const singular = (field: DescField): JsonSchema => {
    switch (field.fieldKind) {
      case "scalar":
        return scalarSchema(field.scalar);
      case "enum":
        return enumRef(field.enum);
      case "message":
        return messageRef(field.message);
      case "list":
        if (field.listKind === "scalar") return scalarSchema(field.scalar);
        if (field.listKind === "enum") return enumRef(field.enum);
        return messageRef(field.message);
      case "map":
        if (field.mapKind === "scalar") return scalarSchema(field.scalar);
        if (field.mapKind === "enum") return enumRef(field.enum);
        return messageRef(field.message);
    }
  };

  function fieldSchema(field: DescField): JsonSchema {
    if (field.fieldKind === "list") return { type: "array", items: singular(field) };
    if (field.fieldKind === "map") {
      return { type: "object", additionalProperties: singular(field) };
    }
    return singular(field);
  }

  return {
    fieldSchema,
    messageRef,
    components() {
      return Object.fromEntries([...components.entries()].sort(([a], [b]) => a.localeCompare(b)));
    },
  };
}
