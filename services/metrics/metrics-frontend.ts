import { createServer, type Server } from "node:http";
import { isIP } from "node:net";
import type { Logger } from "pino";
import { writeRpcError } from "../auth/rpc-error-response.js";
import { METRICS_SURFACE } from "../auth/scopes.js";
import type { HttpFrontend } from "../gateway/http-frontend.js";
import type { HttpRouteSpec } from "../gateway/http-route-spec.js";
import type { GatewayMetrics } from "./gateway-metrics.js";

/** The route of {@link createMetricsFrontend}. */
export const METRICS_ROUTE = {
  method: "GET",
  path: "/metrics",
  service: METRICS_SURFACE,
  doc: {
    operationId: "Gateway_Metrics",
    tags: ["Gateway"],
    summary: "Prometheus metrics (text exposition format).",
    responses: {
      "200": { description: "OK", content: { "text/plain": { schema: { type: "string" } } } },
      default: { $ref: "#/components/responses/RpcError" },
    },
  },
} satisfies HttpRouteSpec;

/**
 * `GET /metrics` on the public port for Prometheus scrapers: the text exposition format, for
 * tokens with the read-only `metrics` scope.
 */
export function createMetricsFrontend(
  metrics: Pick<GatewayMetrics, "render" | "contentType">,
): HttpFrontend {
  return {
    routes: [METRICS_ROUTE],
    route(req) {
      const path = (req.url ?? "").split("?")[0];
      if (req.method !== METRICS_ROUTE.method || path !== METRICS_ROUTE.path) return undefined;
      return {
        service: METRICS_ROUTE.service,
        writeError: writeRpcError,
        serve(_req, res) {
          metrics.render().then(
            (text) => {
              res.writeHead(200, {
                "content-type": metrics.contentType,
                "cache-control": "no-store",
              });
              res.end(text);
            },
            () => {
              res.writeHead(500, { "content-type": "text/plain" });
              res.end("metrics could not be collected\n");
            },
          );
        },
      };
    },
  };
}

/** A listener that serves `/metrics` without a token, bound to a loopback address only. */
export interface MetricsListener {
  /** Starts listening; resolves with the port. */
  listen(): Promise<number>;
  /** Stops listening. */
  close(): Promise<void>;
}

/**
 * Creates the optional token-free metrics listener at `address` (`127.0.0.1:9464`, `[::1]:9464`,
 * `localhost:0`). Only loopback addresses are accepted: anyone who can reach the listener reads
 * the metrics, so it must not face a network.
 */
export function createMetricsListener(
  address: string,
  metrics: Pick<GatewayMetrics, "render" | "contentType">,
  log: Logger,
): MetricsListener {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(address);
  const host = match?.[1]?.replace(/^\[|\]$/g, "") ?? "";
  const port = Number(match?.[2]);
  const loopback =
    host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
  if (!match || !loopback || port > 65_535) {
    throw new Error(
      `VOXGATE_METRICS_LISTEN must be a loopback host:port such as 127.0.0.1:9464 (got "${address}")`,
    );
  }
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("only GET /metrics is served here\n");
      return;
    }
    metrics.render().then(
      (text) => {
        res.writeHead(200, { "content-type": metrics.contentType });
        res.end(text);
      },
      () => {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end("metrics could not be collected\n");
      },
    );
  });
  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          const bound = server.address();
          const boundPort = typeof bound === "object" && bound ? bound.port : port;
          log.info(
            { component: "metrics", address: `${host}:${boundPort}` },
            "metrics listener ready",
          );
          resolve(boundPort);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
