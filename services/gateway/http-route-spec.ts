/**
 * Routes of the hand-written HTTP frontends, declared once: each frontend's router matches
 * requests against its declarations and the OpenAPI generator describes the same declarations,
 * so the document cannot list a route the gateway does not answer, or miss one it does.
 */

/** A route as the gateway answers it: method and OpenAPI path template. */
export interface DeclaredRoute {
  /** HTTP method, upper case (`GET`, `POST`, …; a custom REST verb keeps its own name). */
  method: string;
  /**
   * Path template, e.g. `/api/v1/voices/prompts/{name}` (a `{name=**}` variable spans segments;
   * {@link openApiTemplate} gives the OpenAPI path).
   */
  path: string;
}

/** What the OpenAPI document says of a declared route, as plain OpenAPI 3.1 JSON. */
export interface HttpRouteDoc {
  /** Unique operation id, e.g. `Relay_CreateClonePrompt`. */
  operationId: string;
  /** Tags grouping the operation (the surface's name). */
  tags: string[];
  /** One line for people. */
  summary: string;
  /** More for people. @default none */
  description?: string;
  /** Query and header parameters; path parameters come from the template. @default none */
  parameters?: unknown[];
  /** The request body. @default none */
  requestBody?: unknown;
  /** Answers by HTTP status (and `default`). */
  responses: Record<string, unknown>;
}

/**
 * One route of a hand-written frontend: what the router matches, the scope the gate checks, and
 * what the OpenAPI document says of it.
 */
export interface HttpRouteSpec extends DeclaredRoute {
  /** HTTP method. HEAD requests match GET routes where the frontend allows it. */
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /**
   * Path template: `{name}` matches one segment, `{name=**}` one or more (slashes included);
   * the rest matches literally. The OpenAPI path is the template with `=**` left out.
   */
  path: string;
  /**
   * Service (or surface) whose token scope the gate checks, e.g. `voxgate.v1.TtsService`;
   * undefined: the route needs no token.
   */
  service: string | undefined;
  /** The OpenAPI operation. */
  doc: HttpRouteDoc;
}

/** The outcome of matching a request against declared routes. */
export type RouteMatch<S extends HttpRouteSpec> =
  /** `spec` serves it; `params` are the path variables, still percent-encoded. */
  | { kind: "match"; spec: S; params: Record<string, string> }
  /** The path is declared, for other methods only (`allow`, without repeats). */
  | { kind: "method-not-allowed"; allow: string[] }
  /** No declared path matches. */
  | { kind: "none" };

/** Matches requests against a frontend's declared routes. */
export interface RouteMatcher<S extends HttpRouteSpec> {
  /** The route `method` and `path` (no query) go to; the first declaration that fits wins. */
  match(method: string, path: string): RouteMatch<S>;
}

/** Options of {@link createRouteMatcher}. */
export interface RouteMatcherOptions {
  /** Whether a HEAD request matches a GET route. @default false */
  headAsGet?: boolean;
  /** Prefix every template is mounted under, e.g. `/storyforge`. @default "" */
  basePath?: string;
}

const VARIABLE = /\{([A-Za-z_][A-Za-z0-9_]*)(=\*\*)?\}/g;

/**
 * Compiles `specs` into a matcher. Declarations are tried in order, so a literal path declared
 * before a template (`/prompts/search` before `/prompts/{name}`) takes precedence.
 * @throws Error naming the template when one is malformed.
 */
export function createRouteMatcher<S extends HttpRouteSpec>(
  specs: readonly S[],
  options: RouteMatcherOptions = {},
): RouteMatcher<S> {
  const base = options.basePath ?? "";
  const compiled = specs.map((spec) => {
    if (!spec.path.startsWith("/")) throw new Error(`route template ${spec.path} lacks its /`);
    const names: string[] = [];
    let source = "";
    let last = 0;
    for (const found of spec.path.matchAll(VARIABLE)) {
      source += escapeRegExp(spec.path.slice(last, found.index));
      source += found[2] ? "(.+)" : "([^/]+)";
      names.push(found[1] as string);
      last = found.index + found[0].length;
    }
    source += escapeRegExp(spec.path.slice(last));
    if (/[{}]/.test(spec.path.replace(VARIABLE, ""))) {
      throw new Error(`route template ${spec.path} has a malformed variable`);
    }
    return { spec, names, pattern: new RegExp(`^${escapeRegExp(base)}${source}$`) };
  });
  return {
    match(method, path) {
      const allow: string[] = [];
      for (const { spec, names, pattern } of compiled) {
        const found = pattern.exec(path);
        if (!found) continue;
        const fits =
          spec.method === method ||
          (options.headAsGet === true && method === "HEAD" && spec.method === "GET");
        if (!fits) {
          if (!allow.includes(spec.method)) allow.push(spec.method);
          continue;
        }
        const params: Record<string, string> = {};
        names.forEach((name, i) => {
          params[name] = found[i + 1] ?? "";
        });
        return { kind: "match", spec, params };
      }
      return allow.length > 0 ? { kind: "method-not-allowed", allow } : { kind: "none" };
    },
  };
}

/** The OpenAPI path of a template: `{key=**}` becomes `{key}`, under `basePath`. */
export function openApiTemplate(path: string, basePath = ""): string {
  return `${basePath}${path.replace(VARIABLE, "{$1}")}`;
}

/** Names of a template's path variables, in order, with whether each spans segments. */
export function templateVariables(path: string): Array<{ name: string; multi: boolean }> {
  return [...path.matchAll(VARIABLE)].map((m) => ({ name: m[1] as string, multi: !!m[2] }));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
