import { CONSOLE_ROUTES } from "../console/console-frontend.js";
import { HEALTH_ROUTES } from "../gateway/health-routes.js";
import { METRICS_ROUTE } from "../metrics/metrics-frontend.js";
import { SIGNED_BLOB_ROUTE } from "../object-store/signed-blob-frontend.js";
import { OPENAI_ROUTES, OPENAI_SCHEMAS } from "../openai/openai-openapi.js";
import { PROMPT_UPLOAD_ROUTE } from "../prompt-store/prompt-upload-frontend.js";
import { RELAY_DEBUG_SOCKET_ROUTE } from "../relay/relay-debug-socket.js";
import { RELAY_ROUTES, RELAY_SCHEMAS } from "../relay/relay-routes.js";
import { DEFAULT_STORYFORGE_OPTIONS } from "../storyforge/storyforge-options.js";
import { STORYFORGE_ROUTES, STORYFORGE_SCHEMAS } from "../storyforge/storyforge-routes.js";
import type { RouteTable } from "../transcoding/route-table.js";
import { VOXGATE_VERSION } from "../version.js";
import { API_DOCS_ROUTES } from "./api-docs-frontend.js";
import { createOpenApiDocument, routeOperations } from "./openapi-document.js";
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
 * The OpenAPI 3.1 document of voxgate's public HTTP surface: the REST routes of `table`, and
 * every hand-written route from the declarations its frontend serves it from — the gateway's
 * health, metrics, documentation, console, signed-blob and prompt-upload routes, the
 * OpenAI-compatible API, the StoryForge surface (under its default base path, `/storyforge`)
 * and the Qwen3 relay surface with its debug WebSocket.
 */
export function createVoxgateOpenApi(options: VoxgateOpenApiOptions): Record<string, unknown> {
  return createOpenApiDocument({
    table: options.table,
    extra: [
      ...routeOperations([
        ...HEALTH_ROUTES,
        METRICS_ROUTE,
        ...API_DOCS_ROUTES,
        ...CONSOLE_ROUTES,
        SIGNED_BLOB_ROUTE,
        PROMPT_UPLOAD_ROUTE,
        ...OPENAI_ROUTES,
        ...RELAY_ROUTES,
        RELAY_DEBUG_SOCKET_ROUTE,
      ]),
      ...routeOperations(STORYFORGE_ROUTES, DEFAULT_STORYFORGE_OPTIONS.basePath),
    ],
    extraSchemas: { ...OPENAI_SCHEMAS, ...RELAY_SCHEMAS, ...STORYFORGE_SCHEMAS },
    extraTags: {
      Gateway: "Health, metrics, signed blob URLs and this document.",
      Console: "The web console for people.",
      OpenAI: "OpenAI's speech, models and chat APIs, over the same services.",
      Relay:
        "The Qwen3 relay API (decay256/qwen3-tts-server relay-api.yaml) as its clients call it, " +
        'over the same services; errors are `{"error", "code"}`.',
      StoryForge:
        "The Tinybox node API StoryForge Cloud calls, under VOXGATE_STORYFORGE_BASE_PATH " +
        '(`/storyforge` here); failures are soft `{"ok": false, "error"}` answers with HTTP 200, ' +
        'auth refusals `{"detail"}` with 401/403. Token scope storyforge.',
    },
    ...(options.comments ? { comments: options.comments } : {}),
    version: options.version ?? VOXGATE_VERSION,
  });
}
