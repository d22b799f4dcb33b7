import { METRICS_SURFACE } from "../auth/scopes.js";
import { type ExtraOperation, securityOf } from "./openapi-document.js";
import type { JsonSchema } from "./proto-json-schema.js";

const TAG = "Gateway";
const health: JsonSchema = {
  type: "object",
  properties: {
    status: { type: "string" },
    service: { type: "string" },
    checks: { type: "object", additionalProperties: { type: "string" } },
  },
  required: ["status"],
};

/**
 * The gateway's own plain HTTP routes for the OpenAPI document: health for load balancers,
 * Prometheus metrics, and this document with its reference page.
 */
export function gatewayOperations(): ExtraOperation[] {
  return [
    {
      path: "/healthz",
      method: "get",
      operation: {
        operationId: "Gateway_Healthz",
        tags: [TAG],
        summary: "Liveness, or one service's grpc.health.v1 status.",
        description:
          "Without `service`: 200 while the process runs. With it: 200 when SERVING, 503 when " +
          "NOT_SERVING (voxgate.v1.TtsService with no READY backend), 404 for an unknown name.",
        parameters: [{ name: "service", in: "query", required: false, schema: { type: "string" } }],
        responses: {
          "200": {
            description: "Alive / SERVING",
            content: { "application/json": { schema: health } },
          },
          "404": {
            description: "Unknown service",
            content: { "application/json": { schema: health } },
          },
          "503": {
            description: "NOT_SERVING",
            content: { "application/json": { schema: health } },
          },
        },
        security: [],
      },
    },
    {
      path: "/readyz",
      method: "get",
      operation: {
        operationId: "Gateway_Readyz",
        tags: [TAG],
        summary: "Readiness: accepting work, database answering, a READY backend that can speak.",
        responses: {
          "200": { description: "Ready", content: { "application/json": { schema: health } } },
          "503": {
            description: "Not ready; `checks` says which check failed.",
            content: { "application/json": { schema: health } },
          },
        },
        security: [],
      },
    },
    {
      path: "/metrics",
      method: "get",
      operation: {
        operationId: "Gateway_Metrics",
        tags: [TAG],
        summary: "Prometheus metrics (text exposition format).",
        responses: {
          "200": { description: "OK", content: { "text/plain": { schema: { type: "string" } } } },
          default: { $ref: "#/components/responses/RpcError" },
        },
        security: securityOf(METRICS_SURFACE),
      },
    },
    {
      path: "/openapi.json",
      method: "get",
      operation: {
        operationId: "Gateway_OpenApi",
        tags: [TAG],
        summary: "This document.",
        responses: {
          "200": {
            description: "OK",
            content: { "application/json": { schema: { type: "object" } } },
          },
        },
        security: [],
      },
    },
    {
      path: "/docs",
      method: "get",
      operation: {
        operationId: "Gateway_Docs",
        tags: [TAG],
        summary: "An API reference page for people, rendered from this document.",
        responses: {
          "200": { description: "OK", content: { "text/html": { schema: { type: "string" } } } },
        },
        security: [],
      },
    },
  ];
}
