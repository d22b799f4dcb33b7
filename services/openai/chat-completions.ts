/**
 * OpenAI's chat completions API (`POST /v1/chat/completions`, streamed or not) over LlmService:
 * the request maps onto GenerateTextRequest, the answer onto a `chat.completion` object or SSE
 * `chat.completion.chunk` events ending with `data: [DONE]`.
 */
import { randomBytes } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { GenerateTextRequestSchema } from "../../gen/voxgate/v1/llm_pb.js";
import type { RegisteredBackend } from "../registry/index.js";
import { invalidRequest, OpenAiError } from "./openai-error.js";

/** A parsed chat completion request. */
export interface ChatCall {
  /** The LlmService request. */
  request: MessageInitShape<typeof GenerateTextRequestSchema>;
  /** Whether the answer is streamed as SSE. */
  stream: boolean;
  /** Whether a streamed answer ends with a usage chunk (`stream_options.include_usage`). */
  includeUsage: boolean;
}

const ROLES = new Set(["system", "user", "assistant", "developer"]);

/**
 * Reads an OpenAI chat completion body. `messages[].content` may be a string or an array of
 * `{type: "text", text}` parts (joined); the `developer` role is sent as `system`. `max_tokens`
 * or `max_completion_tokens`, `temperature`, `top_p` and `stop` (a string or up to 4 strings) are
 * passed on; `n` other than 1, tools and non-text parts are refused (400) rather than ignored.
 */
export function parseChatRequest(body: unknown): ChatCall {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw invalidRequest("the request body must be a JSON object", null);
  }
  const value = body as Record<string, unknown>;
  const model = value.model;
  if (typeof model !== "string" || model === "") {
    throw invalidRequest("model is required (a model listed by GET /v1/models)", "model");
  }
  if (!Array.isArray(value.messages) || value.messages.length === 0) {
    throw invalidRequest("messages must be a non-empty array", "messages");
  }
  const messages = value.messages.map((entry: unknown, index: number) => {
    const message = (entry ?? {}) as Record<string, unknown>;
    const role = message.role;
    if (typeof role !== "string" || !ROLES.has(role)) {
      throw invalidRequest(
        `messages[${index}].role must be system, developer, user or assistant`,
        "messages",
      );
    }
    return {
      role: role === "developer" ? "system" : role,
      content: contentOf(message.content, index),
    };
  });
  if (value.n !== undefined && value.n !== null && value.n !== 1) {
    throw invalidRequest("only n = 1 is supported", "n");
  }
  if (Array.isArray(value.tools) && value.tools.length > 0) {
    throw invalidRequest("tools are not supported", "tools");
  }
  const maxTokens = value.max_completion_tokens ?? value.max_tokens;
  if (maxTokens !== undefined && maxTokens !== null) {
    if (
      !Number.isInteger(maxTokens) ||
      (maxTokens as number) < 1 ||
      (maxTokens as number) > 1_000_000
    ) {
      throw invalidRequest("max_tokens must be a whole number in 1..1000000", "max_tokens");
    }
  }
  const number = (name: string, min: number, max: number): number | undefined => {
    const v = value[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !(v >= min && v <= max)) {
      throw invalidRequest(`${name} must be a number in ${min}..${max}`, name);
    }
    return v;
  };
  const temperature = number("temperature", 0, 2);
  const topP = number("top_p", 0, 1);
  const stop =
    value.stop === undefined || value.stop === null
      ? []
      : typeof value.stop === "string"
        ? [value.stop]
        : Array.isArray(value.stop) &&
            value.stop.length <= 4 &&
            value.stop.every((s) => typeof s === "string")
          ? (value.stop as string[])
          : (() => {
              throw invalidRequest("stop must be a string or an array of up to 4 strings", "stop");
            })();
  const streamOptions = value.stream_options as { include_usage?: unknown } | undefined;
  return {
    request: {
      model,
      messages,
      maxTokens: typeof maxTokens === "number" ? maxTokens : 0,
      ...(temperature !== undefined ? { temperature } : {}),
      ...(topP !== undefined ? { topP } : {}),
      stop,
    },
    stream: value.stream === true,
    includeUsage: streamOptions?.include_usage === true,
  };
}

function contentOf(content: unknown, index: number): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) => {
        const p = (part ?? {}) as { type?: unknown; text?: unknown };
        if (p.type !== "text" || typeof p.text !== "string") {
          throw invalidRequest(
            `messages[${index}].content: only text parts are supported`,
            "messages",
          );
        }
        return p.text;
      })
      .join("");
  }
  throw invalidRequest(`messages[${index}].content must be a string or text parts`, "messages");
}

/** The language models backends offer now (model families of FEATURE_GENERATE_TEXT engines). */
export function textModelsOf(
  backends: readonly Pick<RegisteredBackend, "id" | "state" | "capabilities" | "connectedAt">[],
): Array<{ id: string; created: number; owner: string }> {
  const models = new Map<string, { id: string; created: number; owner: string }>();
  for (const backend of backends) {
    if (backend.state === BackendState.REMOVED) continue;
    for (const engine of backend.capabilities.engines) {
      const id = engine.model?.family ?? "";
      if (!id || !engine.features.includes(Feature.GENERATE_TEXT)) continue;
      const created = Math.floor(backend.connectedAt.getTime() / 1000);
      const known = models.get(id);
      if (!known || created < known.created) models.set(id, { id, created, owner: backend.id });
    }
  }
  return [...models.values()].sort((a, b) => a.id.localeCompare(b.id));
}

/** A `model_not_found` error (404) for a model no backend runs. */
export function unknownTextModel(model: string): OpenAiError {
  return new OpenAiError(
    `model "${model}" is not run by any connected backend (GET /v1/models lists them)`,
    404,
    "model",
    "model_not_found",
  );
}

/** A fresh completion id, `chatcmpl-` and 24 hex digits. */
export function completionId(): string {
  return `chatcmpl-${randomBytes(12).toString("hex")}`;
}
