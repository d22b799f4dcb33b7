import {
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  getOption,
} from "@bufbuild/protobuf";
import { http } from "../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import {
  compareSpecificity,
  matchPathTemplate,
  type PathBindings,
  type PathTemplate,
  PathTemplateError,
  parsePathTemplate,
} from "./path-template.js";

/** Type name of `google.api.HttpBody`, whose bytes travel raw over REST. */
export const kHttpBodyTypeName = "google.api.HttpBody";

/** Whether `message` is `google.api.HttpBody`. */
export function isHttpBody(message: DescMessage | undefined): boolean {
  return message?.typeName === kHttpBodyTypeName;
}

/** One HTTP binding of an RPC: its primary rule or one of its `additional_bindings`. */
export interface RestBinding {
  /** HTTP method, upper case (`GET`, `POST`, … or a custom kind). */
  httpMethod: string;
  /** Parsed path template. */
  template: PathTemplate;
  /** The RPC it calls. */
  method: DescMethod;
  /**
   * Where the request body goes: undefined (no body), `"*"` (the whole request message) or the
   * top-level request field it fills.
   */
  body: undefined | "*" | DescField;
  /** The top-level response field that is the response body, or undefined for the whole message. */
  responseBody: DescField | undefined;
}

/** The outcome of matching one request against the table. */
export type RouteMatch =
  | { kind: "match"; binding: RestBinding; bindings: PathBindings }
  /** Some binding has the path but none has the method. */
  | { kind: "method-not-allowed"; allow: string[] }
  | { kind: "not-found" };

/** Every binding of a set of services, matched by most specific template. */
export interface RouteTable {
  /** All bindings, in annotation order. */
  readonly bindings: readonly RestBinding[];
  /** Finds the binding for `httpMethod` and `path` (no query string). */
  match(httpMethod: string, path: string): RouteMatch;
}

/** Raised at start when an annotation cannot be served (bad template, unknown body field). */
export class RestAnnotationError extends Error {
  override readonly name = "RestAnnotationError";
}

/**
 * Builds the route table from the `google.api.http` annotations of `services`' methods. Methods
 * without an annotation get no route. Throws {@link RestAnnotationError} naming the method when an
 * annotation is malformed, so a bad contract fails at start, not per request.
 */
export function createRouteTable(services: readonly DescService[]): RouteTable {
  const bindings: RestBinding[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      const rule = getOption(method, http);
      if (!rule.pattern.case) continue;
      for (const r of [rule, ...rule.additionalBindings]) bindings.push(toBinding(method, r));
    }
  }
  return {
    bindings,
    match(httpMethod, path) {
      let best: { binding: RestBinding; bindings: PathBindings } | undefined;
      const allow = new Set<string>();
      for (const binding of bindings) {
        const values = matchPathTemplate(binding.template, path);
        if (!values) continue;
        if (binding.httpMethod !== httpMethod) {
          allow.add(binding.httpMethod);
          continue;
        }
        if (!best || compareSpecificity(binding.template, best.binding.template) < 0) {
          best = { binding, bindings: values };
        }
      }
      if (best) return { kind: "match", ...best };
      if (allow.size > 0) return { kind: "method-not-allowed", allow: [...allow].sort() };
      return { kind: "not-found" };
    },
  };
}

function toBinding(method: DescMethod, rule: HttpRule): RestBinding {
  const where = `${method.parent.typeName}.${method.name}`;
  const fail = (why: string): never => {
    throw new RestAnnotationError(`google.api.http of ${where}: ${why}`);
  };
  let httpMethod: string;
  let path: string;
  switch (rule.pattern.case) {
    case "get":
    case "put":
    case "post":
    case "delete":
    case "patch":
      httpMethod = rule.pattern.case.toUpperCase();
      path = rule.pattern.value;
      break;
    case "custom":
      httpMethod = rule.pattern.value.kind.toUpperCase();
      path = rule.pattern.value.path;
      break;
    default:
      return fail("no pattern");
  }
  let template: PathTemplate;
  try {
    template = parsePathTemplate(path);
  } catch (err) {
    return fail(err instanceof PathTemplateError ? err.message : String(err));
  }
  for (const variable of template.variables) {
    const leaf = resolveFieldPath(method.input, variable.fieldPath);
    if (!leaf) fail(`path variable {${variable.fieldPath.join(".")}} names no field`);
    else if (leaf.fieldKind !== "scalar" && leaf.fieldKind !== "enum") {
      fail(`path variable {${variable.fieldPath.join(".")}} is not a scalar field`);
    }
  }
  const topField = (name: string, what: string, message: DescMessage) =>
    message.fields.find((f) => f.name === name) ?? fail(`${what} "${name}" names no field`);
  const body =
    rule.body === ""
      ? undefined
      : rule.body === "*"
        ? "*"
        : topField(rule.body, "body", method.input);
  const responseBody =
    rule.responseBody === ""
      ? undefined
      : topField(rule.responseBody, "response_body", method.output);
  return { httpMethod, template, method, body, responseBody };
}

/** The field a dotted path names in `message` (every part but the last a singular message). */
export function resolveFieldPath(
  message: DescMessage,
  path: readonly string[],
): DescField | undefined {
  let current: DescMessage | undefined = message;
  let field: DescField | undefined;
  for (const [i, name] of path.entries()) {
    if (!current) return undefined;
    field = current.fields.find((f) => f.name === name || f.jsonName === name);
    if (!field) return undefined;
    if (i < path.length - 1) {
      if (field.fieldKind !== "message") return undefined;
      current = field.message;
    }
  }
  return field;
}

/** The OpenAPI path of a binding: `{field=pattern}` variables become `{field}`. */
export function openApiPath(binding: RestBinding): string {
  return binding.template.source.replace(/\{([^}=]+)(=[^}]*)?\}/g, "{$1}");
}
