/**
 * `google.api.http` path templates (see google/api/http.proto):
 *
 *     Template = "/" Segments [ Verb ] ;
 *     Segments = Segment { "/" Segment } ;
 *     Segment  = "*" | "**" | LITERAL | Variable ;
 *     Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *     FieldPath = IDENT { "." IDENT } ;
 *     Verb     = ":" LITERAL ;
 */

/** One segment of a parsed template. */
export type TemplateSegment =
  | { kind: "literal"; value: string }
  | { kind: "single" }
  | { kind: "multi" };

/** A variable: the field it fills and the segments it spans (start inclusive, end exclusive). */
export interface TemplateVariable {
  /** Field path, e.g. `["book", "id"]`. */
  fieldPath: string[];
  /** Index of its first segment. */
  start: number;
  /** Index after its last segment. */
  end: number;
}

/** A parsed path template. */
export interface PathTemplate {
  /** The template as written. */
  source: string;
  /** Segments, variables expanded (`{name}` is one `single` segment). */
  segments: TemplateSegment[];
  /** Variables in order. */
  variables: TemplateVariable[];
  /** Custom verb without the colon, or undefined. */
  verb: string | undefined;
}

/** Raised when an annotation's path template is malformed. */
export class PathTemplateError extends Error {
  override readonly name = "PathTemplateError";
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LITERAL = /^[^/{}=*:]+$/;

/** Parses a path template; throws {@link PathTemplateError} when it is malformed. */
export function parsePathTemplate(source: string): PathTemplate {
  const fail = (why: string): never => {
    throw new PathTemplateError(`path template "${source}": ${why}`);
  };
  if (!source.startsWith("/")) fail("must start with /");
  let rest = source.slice(1);
  let verb: string | undefined;
  // The verb follows the last segment; a colon inside braces belongs to no verb.
  const lastSlash = rest.lastIndexOf("/");
  const lastBrace = rest.lastIndexOf("}");
  const colon = rest.indexOf(":", Math.max(lastSlash, lastBrace) + 1);
  if (colon >= 0) {
    verb = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!LITERAL.test(verb)) fail(`bad verb "${verb}"`);
  }
  const segments: TemplateSegment[] = [];
  const variables: TemplateVariable[] = [];
  const parts = splitOutsideBraces(rest, fail);
  for (const part of parts) {
    if (part.startsWith("{")) {
      if (!part.endsWith("}")) fail(`bad variable "${part}"`);
      const inner = part.slice(1, -1);
      const eq = inner.indexOf("=");
      const path = eq >= 0 ? inner.slice(0, eq) : inner;
      const fieldPath = path.split(".");
      if (!fieldPath.every((name) => IDENT.test(name))) fail(`bad field path "${path}"`);
      const start = segments.length;
      const sub = eq >= 0 ? inner.slice(eq + 1).split("/") : ["*"];
      for (const s of sub) segments.push(plainSegment(s, fail));
      variables.push({ fieldPath, start, end: segments.length });
      continue;
    }
    segments.push(plainSegment(part, fail));
  }
  const multi = segments.findIndex((s) => s.kind === "multi");
  if (multi >= 0 && multi !== segments.length - 1) fail('"**" must be the last segment');
  return { source, segments, variables, verb };
}

function plainSegment(text: string, fail: (why: string) => never): TemplateSegment {
  if (text === "*") return { kind: "single" };
  if (text === "**") return { kind: "multi" };
  if (!LITERAL.test(text)) fail(`bad segment "${text}"`);
  return { kind: "literal", value: text };
}

function splitOutsideBraces(text: string, fail: (why: string) => never): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of text) {
    if (ch === "{") depth++;
    if (ch === "}") depth--;
    if (depth < 0 || depth > 1) fail("unbalanced braces");
    if (ch === "/" && depth === 0) {
      parts.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  if (depth !== 0) fail("unbalanced braces");
  parts.push(current);
  if (parts.some((p) => p === "")) fail("empty segment");
  return parts;
}

/** Values of a template's variables for one request path, keyed by dotted field path. */
export type PathBindings = Map<string, string>;

/**
 * Matches `path` (starting with `/`, without the query) against `template`; returns the variable
 * values, percent-decoded (a multi-segment variable keeps `%2F` encoded, as the spec says), or
 * undefined when it does not match. A `*` matches one non-empty segment, `**` any number.
 */
export function matchPathTemplate(template: PathTemplate, path: string): PathBindings | undefined {
  if (!path.startsWith("/")) return undefined;
  let body = path.slice(1);
  if (template.verb !== undefined) {
    const suffix = `:${template.verb}`;
    if (!body.endsWith(suffix)) return undefined;
    body = body.slice(0, -suffix.length);
  }
  const parts = body.split("/");
  const { segments } = template;
  const multi = segments[segments.length - 1]?.kind === "multi";
  const fixed = multi ? segments.length - 1 : segments.length;
  if (multi ? parts.length < fixed : parts.length !== fixed) return undefined;
  for (let i = 0; i < fixed; i++) {
    const segment = segments[i];
    const part = parts[i] ?? "";
    if (!segment) return undefined;
    if (segment.kind === "literal") {
      if (decodeSegment(part) !== segment.value) return undefined;
    } else if (part === "") {
      return undefined;
    }
  }
  const bindings: PathBindings = new Map();
  for (const variable of template.variables) {
    const end = variable.end === segments.length && multi ? parts.length : variable.end;
    const raw = parts.slice(variable.start, end);
    const multiSegment = end - variable.start !== 1 || segments[variable.start]?.kind === "multi";
    let value: string;
    try {
      value = multiSegment
        ? raw.map((p) => decodeKeepingSlash(p)).join("/")
        : decodeURIComponent(raw[0] ?? "");
    } catch {
      return undefined;
    }
    bindings.set(variable.fieldPath.join("."), value);
  }
  return bindings;
}

function decodeSegment(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function decodeKeepingSlash(part: string): string {
  return part
    .split(/%2F/i)
    .map((p) => decodeURIComponent(p))
    .join("%2F");
}

/**
 * Orders two templates that both matched a path, most specific first (negative when `a` wins): at
 * the first segment where they differ a literal beats `*`, which beats `**`; a longer template
 * beats its prefix; a template with a custom verb beats one without.
 */
export function compareSpecificity(a: PathTemplate, b: PathTemplate): number {
  const rank = (s: TemplateSegment | undefined) =>
    s === undefined ? 0 : s.kind === "literal" ? 3 : s.kind === "single" ? 2 : 1;
  const n = Math.max(a.segments.length, b.segments.length);
  for (let i = 0; i < n; i++) {
    const diff = rank(b.segments[i]) - rank(a.segments[i]);
    if (diff !== 0) return diff;
  }
  return (b.verb === undefined ? 0 : 1) - (a.verb === undefined ? 0 : 1);
}
