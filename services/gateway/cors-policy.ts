import { cors } from "@connectrpc/connect";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";

/** Options of {@link createCorsPolicy}. */
export interface CorsPolicyOptions {
  /**
   * Origins (`scheme://host[:port]`, as browsers send them) whose pages may call the public port;
   * `*` allows every origin. Empty: no cross-origin access (responses carry no CORS headers).
   * @default []
   */
  allowedOrigins: readonly string[];
  /** How long a browser may cache a preflight answer, in seconds. @default 7200 (Chromium's cap) */
  maxAgeSeconds?: number;
}

/** CORS of the public port: answers preflights and marks responses for allowed origins. */
export interface CorsPolicy {
  /**
   * Handles the CORS part of `req`. A preflight (OPTIONS with `Access-Control-Request-Method`)
   * from an allowed origin is answered here, 204, and true is returned: the caller must not serve
   * it further (a browser sends no token with a preflight, so it must never reach the auth gate).
   * Any other request from an allowed origin gets its allow and expose headers set on `res`, to go
   * out with whatever answers it, and false is returned. Requests from other origins are left
   * untouched: without allow headers the browser keeps the response from the page.
   */
  handle(req: NodeRequest, res: NodeResponse): boolean;
}

/** Methods of every public route: Connect and gRPC-Web (POST, GET), REST bindings, OpenAI. */
const ALLOWED_METHODS = [...new Set([...cors.allowedMethods, "PUT", "PATCH", "DELETE"])];

/**
 * Request headers a page may send: Connect's and gRPC-Web's, the bearer token, a request id and
 * voxgate's own (`x-voxgate-timeout-ms`, …; a preflight asking for any `x-voxgate-*` gets it too).
 */
const ALLOWED_HEADERS = [
  ...cors.allowedHeaders,
  "Authorization",
  "X-Request-Id",
  "X-Voxgate-Timeout-Ms",
  "Grpc-Timeout",
];

/**
 * Response headers a page may read: gRPC-Web's status (without them a gRPC-Web client sees every
 * call fail), Connect's, the request id, `Retry-After` of 429s and voxgate's own. Connect unary
 * sends trailers as `trailer-` headers, so those names are exposed too.
 */
const EXPOSED_HEADERS = (() => {
  const voxgate = [
    "X-Voxgate-Backend",
    "X-Voxgate-Attempts",
    "X-Voxgate-Queue-Ms",
    "X-Voxgate-Sample-Rate",
    "X-Voxgate-Reason",
  ];
  return [
    ...cors.exposedHeaders,
    "X-Request-Id",
    "Retry-After",
    "Content-Disposition",
    ...voxgate,
    ...voxgate.map((name) => `Trailer-${name}`),
  ];
})();

/**
 * Checks that `origin` is `*` or an origin as browsers send it (`https://app.example:8443`: no
 * path, no trailing slash). Returns an error message, or undefined when it is fine.
 */
export function checkCorsOrigin(origin: string): string | undefined {
  if (origin === "*") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return `"${origin}" is not an origin (scheme://host[:port])`;
  }
  if (parsed.origin !== origin) {
    return `"${origin}" is not an origin: write it as ${parsed.origin === "null" ? "scheme://host[:port]" : parsed.origin}`;
  }
  return undefined;
}

/**
 * Creates the public port's CORS policy. Tokens travel in the `Authorization` header, never in
 * cookies, so credentials are not allowed and the allowed origin is echoed, never `*`.
 */
export function createCorsPolicy(options: CorsPolicyOptions): CorsPolicy {
  const any = options.allowedOrigins.includes("*");
  const origins = new Set(options.allowedOrigins);
  const maxAge = String(options.maxAgeSeconds ?? 7200);
  const allowedHeaders = new Set(ALLOWED_HEADERS.map((h) => h.toLowerCase()));
  const methods = ALLOWED_METHODS.join(", ");
  const exposed = EXPOSED_HEADERS.join(", ");

  return {
    handle(req, res) {
      if (origins.size === 0) return false;
      const origin = req.headers.origin;
      if (typeof origin !== "string" || !(any || origins.has(origin))) return false;
      res.setHeader("Access-Control-Allow-Origin", origin);
      res.setHeader("Vary", "Origin");
      const requestedMethod = req.headers["access-control-request-method"];
      if (req.method !== "OPTIONS" || typeof requestedMethod !== "string") {
        res.setHeader("Access-Control-Expose-Headers", exposed);
        return false;
      }
      // A preflight: allow the fixed list plus whatever `x-voxgate-*` the page asks for.
      const requested = String(req.headers["access-control-request-headers"] ?? "")
        .split(",")
        .map((h) => h.trim().toLowerCase())
        .filter((h) => h.startsWith("x-voxgate-") && /^[a-z0-9-]+$/.test(h));
      const headers = [...allowedHeaders, ...requested.filter((h) => !allowedHeaders.has(h))];
      res.writeHead(204, {
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": headers.join(", "),
        "Access-Control-Max-Age": maxAge,
      });
      res.end();
      return true;
    },
  };
}
