import { create, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import {
  PromptStoreService,
  PutPromptResponseSchema,
} from "../../gen/voxgate/v1/prompt_store_pb.js";
import type { GateResult } from "../auth/request-gate.js";
import {
  discardBody,
  type NodeRequest,
  type NodeResponse,
  writeRpcError,
} from "../auth/rpc-error-response.js";
import type { Principal } from "../auth/token-store.js";
import type { HttpFrontend, HttpRoute } from "../gateway/http-frontend.js";
import type { HttpRouteSpec } from "../gateway/http-route-spec.js";
import { isPromptStoreError } from "./prompt-errors.js";
import { toPromptRpcError } from "./prompt-rpc-error.js";
import type { PromptMetadata, PromptStore } from "./prompt-store.js";
import { toPromptMessage } from "./prompt-store-handler.js";

/** Path of the raw prompt upload. */
export const PROMPT_UPLOAD_PATH = "/v1/prompts:upload";

const PROMPT_TAG = "PromptStoreService";

/** The route of {@link createPromptUploadFrontend}; other methods on its path answer 405. */
export const PROMPT_UPLOAD_ROUTE = {
  method: "POST",
  path: PROMPT_UPLOAD_PATH,
  service: PromptStoreService.typeName,
  doc: {
    operationId: "PromptStoreService_UploadPrompt",
    tags: [PROMPT_TAG],
    summary: "Uploads a clone prompt as the raw request body, streamed into the prompt store.",
    description:
      "The body's Content-Type is the prompt's unless `content_type` says otherwise. A body " +
      "over VOXGATE_MAX_PROMPT_BYTES is refused with 413 (before reading when Content-Length " +
      "shows it). Answers what PutPrompt answers.",
    parameters: [
      ...["name", "reference_text", "model_family", "model_size", "engine", "content_type"].map(
        (name) => ({ name, in: "query", required: false, schema: { type: "string" } }),
      ),
      {
        name: "tag",
        in: "query",
        required: false,
        description: "Tags as `tag.<key>=<value>`; any other query parameter is refused.",
        style: "deepObject",
        schema: { type: "object", additionalProperties: { type: "string" } },
      },
    ],
    requestBody: {
      required: true,
      content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
    },
    responses: {
      "200": {
        description: "The stored prompt.",
        content: {
          "application/json": {
            schema: { $ref: "#/components/schemas/voxgate.v1.PutPromptResponse" },
          },
        },
      },
      default: { $ref: "#/components/responses/RpcError" },
    },
  },
} satisfies HttpRouteSpec;

/** Options of {@link createPromptUploadFrontend}. */
export interface PromptUploadFrontendOptions {
  /** Where prompts go. */
  store: PromptStore;
  /** The store as one caller may see it (tenant ownership); `store` for everyone when omitted. */
  storeFor?: ((principal: Principal | undefined) => PromptStore) | undefined;
  /** Largest prompt, in bytes (the store's `maxPromptBytes`; checked early against Content-Length). */
  maxPromptBytes: number;
  /** Root logger. */
  log: Logger;
}

const FIELDS: Record<string, keyof Omit<PromptMetadata, "tags">> = {
  name: "name",
  reference_text: "referenceText",
  model_family: "modelFamily",
  model_size: "modelSize",
  engine: "engine",
  content_type: "contentType",
};

/**
 * A REST-friendly upload: `POST /v1/prompts:upload?name=…&model_family=…&tag.<key>=…` with the
 * raw prompt bytes as the body (the body's Content-Type is the prompt's unless `content_type` is
 * given). Scope voices, checked by the request gate before the body is read. The body streams
 * into the prompt store under the same `maxPromptBytes` limit as PutPrompt: a Content-Length over
 * it is refused before reading, a chunked body as soon as it passes it (413 either way). Answers
 * `{"prompt": …}` as PutPrompt does.
 */
export function createPromptUploadFrontend(options: PromptUploadFrontendOptions): HttpFrontend {
  const log = options.log.child({ component: "prompt-upload" });

  async function upload(
    req: NodeRequest,
    res: NodeResponse,
    url: URL,
    principal: Principal | undefined,
  ): Promise<void> {
    const metadata: PromptMetadata = {
      name: "",
      referenceText: "",
      modelFamily: "",
      modelSize: "",
      engine: "",
      contentType:
        String(req.headers["content-type"] ?? "")
          .split(";")[0]
          ?.trim() ?? "",
      tags: {},
    };
    for (const [key, value] of url.searchParams) {
      const field = FIELDS[key];
      if (field) metadata[field] = value;
      else if (key.startsWith("tag.")) metadata.tags[key.slice(4)] = value;
      else throw new ConnectError(`unknown query parameter "${key}"`, Code.InvalidArgument);
    }
    const length = Number(req.headers["content-length"] ?? Number.NaN);
    if (length > options.maxPromptBytes) {
      throw new ConnectError(
        `prompt is larger than ${options.maxPromptBytes} bytes (maxPromptBytes, VOXGATE_MAX_PROMPT_BYTES)`,
        Code.ResourceExhausted,
      );
    }
    const aborter = new AbortController();
    res.once("close", () => aborter.abort());
    const store = options.storeFor?.(principal) ?? options.store;
    const { prompt } = await store.put(req as AsyncIterable<Uint8Array>, metadata, {
      signal: aborter.signal,
    });
    const body = toJsonString(
      PutPromptResponseSchema,
      create(PutPromptResponseSchema, { prompt: toPromptMessage(prompt) }),
    );
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
    });
    res.end(body);
  }

  function writeError(req: NodeRequest, res: NodeResponse, err: unknown): void {
    const error = toPromptRpcError(err);
    if (error.code === Code.ResourceExhausted) {
      // A refused upload is 413 on REST, as for any body over a limit.
      if (req.httpVersionMajor === 1) discardBody(req);
      const body = JSON.stringify({ code: "resource_exhausted", message: error.rawMessage });
      res.writeHead(413, { "content-type": "application/json", connection: "close" });
      res.end(body);
      return;
    }
    writeRpcError(req, res, error);
  }

  return {
    routes: [PROMPT_UPLOAD_ROUTE],
    route(req) {
      const url = new URL(req.url ?? "/", "http://gateway");
      if (url.pathname !== PROMPT_UPLOAD_ROUTE.path) return undefined;
      const route: HttpRoute = {
        service: PROMPT_UPLOAD_ROUTE.service,
        writeError: (r, s, error) => writeRpcError(r, s, error),
        serve(r: NodeRequest, s: NodeResponse, gate: GateResult) {
          if (r.method !== PROMPT_UPLOAD_ROUTE.method) {
            s.writeHead(405, { allow: "POST", "content-type": "application/json" });
            s.end(
              JSON.stringify({
                code: "unimplemented",
                message: `${r.method} is not allowed here; use POST`,
              }),
            );
            return;
          }
          upload(r, s, url, gate.principal).catch((err: unknown) => {
            if (!isPromptStoreError(err) && !(err instanceof ConnectError)) {
              log.error({ err, requestId: gate.requestId }, "prompt upload failed");
            }
            if (s.headersSent) s.destroy();
            else writeError(r, s, err);
          });
        },
      };
      return route;
    },
  };
}
