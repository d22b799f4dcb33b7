import { OPENAI_SCHEMAS, openAiOperations } from "../openai/openai-openapi.js";
import type { RouteTable } from "../transcoding/route-table.js";
import { VOXGATE_VERSION } from "../version.js";
import { gatewayOperations } from "./gateway-operations.js";
import { createOpenApiDocument } from "./openapi-document.js";
import type { ProtoComments } from "./proto-json-schema.js";

/** Options of {@link createVoxgateOpenApi}. */
export interface VoxgateOpenApiOptions {
  /** The REST transcoder's route table (from `REST_SERVICES`). */
  table: RouteTable;
  /** Proto comments for descriptions (from a `buf build` image). @default none */
  comments?: ProtoComments;
  /** `info.version`. @default the package version */
  version?: string;
}

/**
 * The OpenAPI 3.1 document of voxgate's public HTTP surface: the REST routes of `table`, the
 * OpenAI-compatible routes, and the gateway's health, metrics and documentation routes.
 * The StoryForge and relay surfaces are left out: they copy other APIs, documented by those.
 */
export function createVoxgateOpenApi(options: VoxgateOpenApiOptions): Record<string, unknown> {
  return createOpenApiDocument({
    table: options.table,
    extra: [...openAiOperations(), ...gatewayOperations()],
    extraSchemas: OPENAI_SCHEMAS,
    ...(options.comments ? { comments: options.comments } : {}),
    version: options.version ?? VOXGATE_VERSION,
  });
}
