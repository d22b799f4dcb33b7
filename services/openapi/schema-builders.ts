/** Small builders of the JSON schemas hand-written routes describe their bodies with. */
import type { JsonSchema } from "./proto-json-schema.js";

/** A reference to the component schema `name` (`#/components/schemas/<name>`). */
export function componentRef(name: string): JsonSchema {
  return { $ref: `#/components/schemas/${name}` };
}

/** A string, with a description when one is given. */
export function stringSchema(description?: string): JsonSchema {
  return description ? { type: "string", description } : { type: "string" };
}

/** An object of `properties`, with `required` listed when there are any. */
export function objectSchema(
  properties: Record<string, JsonSchema>,
  required: readonly string[] = [],
): JsonSchema {
  return { type: "object", properties, ...(required.length > 0 ? { required } : {}) };
}
