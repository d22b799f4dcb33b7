import { Code, ConnectError } from "@connectrpc/connect";
import { HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import { writeRpcError } from "../auth/rpc-error-response.js";
import type { BackendRegistry } from "../registry/index.js";
import type { HttpFrontend, HttpRoute } from "./http-frontend.js";
import { createRouteMatcher, type HttpRouteSpec } from "./http-route-spec.js";

const health = {
  type: "object",
  properties: {
    status: { type: "string" },
    service: { type: "string" },
    checks: { type: "object", additionalProperties: { type: "string" } },
  },
  required: ["status"],
};
const healthJson = (description: string) => ({
  description,
  content: { "application/json": { schema: health } },
});

/** The routes of {@link createHealthRoutes}; both answer HEAD too. */
export const HEALTH_ROUTES = [
  {
    method: "GET",
    path: "/healthz",
    service: undefined,
    doc: {
      operationId: "Gateway_Healthz",
      tags: ["Gateway"],
      summary: "Liveness, or one service's grpc.health.v1 status.",
      description:
        "Without `service`: 200 while the process runs. With it: 200 when SERVING, 503 when " +
        "NOT_SERVING (voxgate.v1.TtsService with no READY backend), 404 for an unknown name.",
      parameters: [{ name: "service", in: "query", required: false, schema: { type: "string" } }],
      responses: {
        "200": healthJson("Alive / SERVING"),
        "404": healthJson("Unknown service"),
        "503": healthJson("NOT_SERVING"),
      },
    },
  },
  {
    method: "GET",
    path: "/readyz",
    service: undefined,
    doc: {
      operationId: "Gateway_Readyz",
      tags: ["Gateway"],
      summary: "Readiness: accepting work, database answering, a READY backend that can speak.",
      responses: {
        "200": healthJson("Ready"),
        "503": healthJson("Not ready; `checks` says which check failed."),
      },
    },
  },
] as const satisfies readonly HttpRouteSpec[];

/** What `/readyz` checks besides the process being up. */
export interface ReadinessProbe {
  /** Whether the gateway is accepting work: listening and not shutting down or draining. */
  accepting(): boolean;
  /**
   * Checks that the database answers; resolves with an error message when it does not (or is
   * still opening), undefined when it does.
   */
  database(): Promise<string | undefined>;
}

/** Options of {@link createHealthRoutes}. */
export interface HealthRoutesOptions {
  /** Backends, for the "at least one READY synthesize backend" check. */
  registry: BackendRegistry;
  /** The other readiness checks. */
  readiness: ReadinessProbe;
  /** grpc.health.v1's status of a service (see `createServingStatus`). */
  servingStatus(service: string): Status;
  /**
   * Whether `/readyz` also needs a READY backend that can synthesize: a gateway without GPUs
   * behind it then leaves a load balancer's rotation (setting readyNeedsBackend).
   */
  readyNeedsBackend: boolean;
}

/**
 * Health over plain HTTP for load balancers and orchestrators, without a token:
 * - `GET /healthz`: 200 while the process runs (liveness).
 * - `GET /healthz?service=NAME`: grpc.health.v1's status of that service over HTTP: 200 when
 *   SERVING, 503 when NOT_SERVING (`voxgate.v1.TtsService` with no READY backend), 404 unknown.
 * - `GET /readyz`: 200 when the gateway accepts work — not draining, the database answers and, by
 *   default, at least one READY backend can synthesize — else 503; the JSON body says which
 *   check failed.
 * Both take `HEAD` too. The answers name no address or credential.
 */
export function createHealthRoutes(options: HealthRoutesOptions): HttpFrontend {
  const { readyNeedsBackend } = options;
  const { registry, readiness } = options;

  const canSynthesize = () =>
    registry
      .list()
      .some(
        (b) =>
          b.state === BackendState.READY &&
          b.capabilities.engines.some((e) => e.features.includes(Feature.SYNTHESIZE)),
      );

  async function readyz(res: NodeResponse, head: boolean): Promise<void> {
    const checks: Record<string, string> = {};
    checks.accepting = readiness.accepting() ? "ok" : "shutting down";
    checks.database = (await readiness.database()) ?? "ok";
    if (readyNeedsBackend) {
      checks.backends = canSynthesize() ? "ok" : "no READY backend can synthesize";
    }
    const ready = Object.values(checks).every((value) => value === "ok");
    writeHealth(res, ready ? 200 : 503, { status: ready ? "ready" : "not ready", checks }, head);
  }

  const route = (serve: (res: NodeResponse, head: boolean) => void | Promise<void>): HttpRoute => ({
    service: undefined,
    writeError: writeRpcError,
    serve(req, res) {
      const head = req.method === "HEAD";
      Promise.resolve(serve(res, head)).catch((err: unknown) => {
        const error = new ConnectError(
          "health check failed",
          Code.Internal,
          undefined,
          undefined,
          err,
        );
        writeRpcError(req, res, error);
      });
    },
  });

  const matcher = createRouteMatcher<HttpRouteSpec>(HEALTH_ROUTES, { headAsGet: true });
  return {
    routes: HEALTH_ROUTES,
    route(req: NodeRequest) {
      const path = (req.url ?? "").split("?")[0] ?? "";
      const found = matcher.match(req.method ?? "GET", path);
      // Other methods fall through to the REST routes' answer, as before.
      if (found.kind !== "match") return undefined;
      if (found.spec.doc.operationId === "Gateway_Healthz") {
        const service = new URLSearchParams((req.url ?? "").split("?")[1] ?? "").get("service");
        if (service === null) {
          return route((res, head) => writeHealth(res, 200, { status: "ok" }, head));
        }
        return route((res, head) => {
          const status = options.servingStatus(service);
          const code =
            status === Status.SERVING ? 200 : status === Status.SERVICE_UNKNOWN ? 404 : 503;
          writeHealth(res, code, { service, status: Status[status] }, head);
        });
      }
      return route(readyz);
    },
  };
}

function writeHealth(res: NodeResponse, status: number, body: unknown, head: boolean): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
    "cache-control": "no-store",
  });
  if (head) res.end();
  else res.end(text);
}
