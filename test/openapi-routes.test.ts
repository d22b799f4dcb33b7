/**
 * The OpenAPI document cannot drift from what the gateway answers: a real in-process gateway
 * (default frontends: REST, OpenAI, StoryForge at /storyforge, the relay, prompt upload, signed
 * blobs, health, metrics, docs, console, the relay's debug WebSocket) lists every HTTP route its
 * frontends registered (`Gateway.httpRoutes()`, besides Connect/gRPC/gRPC-Web's
 * `/package.Service/Method`, which gRPC reflection lists), and each must be an operation of the
 * committed openapi/openapi.json. Then each route is called over HTTP without a token: a route
 * the document says needs a bearer scope must be refused 401 by the gate (so a frontend took it,
 * with a service whose scope is checked), an open one must be answered by its frontend (never
 * the REST transcoder's "no route" 404 or a 405).
 */
import { readFileSync } from "node:fs";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPENAPI_FILE } from "../scripts/gen-openapi.js";
import { generateToken, hashToken } from "../services/auth/token-codec.js";
import { createGateway, type Gateway } from "../services/gateway/index.js";
import { kTestGatewayLimits } from "./helpers/test-limits.js";

type Operation = {
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ name: string; in: string; schema?: { enum?: string[] } }>;
};
const doc = JSON.parse(readFileSync(OPENAPI_FILE, "utf8")) as {
  paths: Record<string, Record<string, Operation>>;
};
const METHODS = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);
/** The path item key of a method: OpenAPI has no custom methods (kept as `x-method-<name>`). */
const keyOf = (method: string) =>
  METHODS.has(method.toLowerCase()) ? method.toLowerCase() : `x-method-${method.toLowerCase()}`;

let gateway: Gateway;
let url = "";

beforeAll(async () => {
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [{ name: "client", sha256: hashToken(generateToken()), scopes: ["tts"] }],
    limits: kTestGatewayLimits,
    readyNeedsBackend: false,
    log: pino({ level: "silent" }),
  });
  url = (await gateway.listen()).publicUrl;
}, 60_000);

afterAll(async () => {
  await gateway?.close(1000);
});

describe("every route the gateway answers is in openapi/openapi.json", () => {
  it("describes each registered route once, the compatibility surfaces included", () => {
    const routes = gateway.httpRoutes();
    const keys = routes.map((r) => `${r.method} ${r.path}`);
    // Two frontends declaring one route would leave one of them unreachable.
    expect(new Set(keys).size).toBe(keys.length);
    const missing = routes.filter((r) => !doc.paths[r.path]?.[keyOf(r.method)]);
    expect(missing, "routes the gateway answers that openapi/openapi.json lacks").toEqual([]);
    // The surfaces this test exists for, so an empty list cannot pass.
    for (const key of [
      "POST /v1/prompts:upload",
      "POST /api/v1/voices/clone-prompt",
      "GET /api/v1/voices/prompts/{name}",
      "GET /ws/debug",
      "POST /storyforge/v1/tts",
      "GET /storyforge/ping",
      "POST /v1/audio/speech",
      "GET /v1/blobs/{key}",
      "GET /healthz",
      "POST /v1/speech:synthesize",
    ]) {
      expect(keys, key).toContain(key);
    }
    expect(routes.length).toBeGreaterThan(90);
  });

  it("serves each declared route: scoped ones refuse a call without a token, open ones answer", {
    timeout: 120_000,
  }, async () => {
    const problems: string[] = [];
    for (const route of gateway.httpRoutes()) {
      // The debug WebSocket answers upgrades only (test/relay covers it).
      if (route.path === "/ws/debug") continue;
      const operation = doc.paths[route.path]?.[keyOf(route.method)] ?? {};
      const path = route.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
        const values = operation.parameters?.find((p) => p.name === name && p.in === "path");
        return values?.schema?.enum?.[0] ?? "x";
      });
      const res = await fetch(`${url}${path}`, {
        method: route.method,
        // The console's page answers browsers (which accept HTML) only.
        headers: { accept: "text/html, application/json" },
        ...(["POST", "PUT", "PATCH"].includes(route.method) ? { body: "{}" } : {}),
      });
      const text = await res.text();
      const scoped = (operation.security ?? []).length > 0;
      const answered = scoped
        ? res.status === 401
        : res.status !== 405 && !(res.status === 404 && /no route for/.test(text));
      if (!answered) {
        problems.push(`${route.method} ${path}: ${res.status} ${text.slice(0, 120)}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
