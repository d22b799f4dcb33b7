import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { GenerateRequestSchema } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import type {
  GenerateTextRequest,
  LlmService,
  StreamGenerateTextResponseSchema,
} from "../../gen/voxgate/v1/llm_pb.js";
import { kRequestIdHeader } from "../agent-link/agent-transport.js";
import { kCallContext } from "../gateway/call-context.js";
import type { BackendRegistry } from "../registry/index.js";
import { kAttemptsHeader, kBackendHeader } from "../tts/tts-handler.js";

/** Roles a chat message may have. */
export const CHAT_ROLES = ["system", "user", "assistant"] as const;

/** Limits of text generation calls. */
export interface LlmLimits {
  /** Longest conversation (all messages' content together), in characters. */
  maxLlmPromptChars: number;
}

/** Options of {@link createLlmHandler}. */
export interface LlmHandlerOptions {
  /** Where backends with FEATURE_GENERATE_TEXT are found. */
  registry: BackendRegistry;
  /** Request limits. */
  limits: LlmLimits;
  /** Deadline of calls whose client set none, in ms. */
  defaultTimeoutMs: number;
}

type Piece = MessageInitShape<typeof StreamGenerateTextResponseSchema>;

/**
 * Creates the LlmService implementation: each call goes to a backend whose engines offer
 * FEATURE_GENERATE_TEXT for the model asked (the model name is the engine's model family), through
 * the registry's retry loop, so a backend that fails before the first piece of text is replaced
 * by the next one and one that fails after it ends the call with an error (never a short answer
 * that looks whole). The caller leaving cancels the backend call, and so the model server's
 * request.
 */
export function createLlmHandler(options: LlmHandlerOptions): ServiceImpl<typeof LlmService> {
  const { registry, limits, defaultTimeoutMs } = options;

  async function* run(
    request: GenerateTextRequest,
    context: HandlerContext,
  ): AsyncGenerator<Piece> {
    const backendRequest = checkGenerateRequest(request, limits);
    const requestId = context.values.get(kCallContext)?.requestId ?? "";
    const pieces = registry.call(
      { feature: Feature.GENERATE_TEXT, modelFamily: request.model },
      {
        signal: context.signal,
        timeoutMs: context.timeoutMs() ?? defaultTimeoutMs,
        onFirstItem(backend, attempts) {
          context.responseHeader.set(kBackendHeader, backend.id);
          context.responseHeader.set(kAttemptsHeader, String(attempts));
        },
      },
      async function* attempt({ backend, signal, timeoutMs }): AsyncGenerator<Piece> {
        let finished = false;
        for await (const piece of backend.client.generate(backendRequest, {
          signal,
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
          headers: { [kRequestIdHeader]: requestId },
        })) {
          if (finished) continue;
          // Empty pieces (a role announcement) are not the first token: failover stays possible.
          if (!piece.textDelta && !piece.finishReason) continue;
          finished = piece.finishReason !== "";
          yield {
            textDelta: piece.textDelta,
            finishReason: piece.finishReason,
            model: piece.model || request.model,
            promptTokens: piece.promptTokens,
            completionTokens: piece.completionTokens,
          };
        }
        if (!finished) {
          throw new ConnectError(
            `backend ${backend.id} ended the answer without a finish reason (the answer may be incomplete)`,
            Code.Internal,
          );
        }
      },
    );
    yield* pieces;
  }

  return {
    streamGenerate: run,
    async generate(request, context) {
      let text = "";
      let last: Piece | undefined;
      let model = "";
      for await (const piece of run(request, context)) {
        text += piece.textDelta ?? "";
        model ||= piece.model ?? "";
        last = piece;
      }
      return {
        text,
        finishReason: last?.finishReason ?? "",
        model: model || request.model,
        promptTokens: last?.promptTokens ?? 0,
        completionTokens: last?.completionTokens ?? 0,
      };
    },
  };
}

/**
 * Checks a request against the limits and turns it into the backend's GenerateRequest.
 *
 * @throws ConnectError INVALID_ARGUMENT for no messages, an unknown role, a negative max_tokens,
 *   a temperature outside 0..2 or top_p outside 0..1, and a conversation over the limit.
 */
export function checkGenerateRequest(
  request: GenerateTextRequest,
  limits: LlmLimits,
): MessageInitShape<typeof GenerateRequestSchema> {
  if (request.messages.length === 0) {
    throw new ConnectError("messages is empty: send at least one message", Code.InvalidArgument);
  }
  let chars = 0;
  for (const [index, message] of request.messages.entries()) {
    if (!(CHAT_ROLES as readonly string[]).includes(message.role)) {
      throw new ConnectError(
        `messages[${index}].role "${message.role.slice(0, 40)}" is not one of ${CHAT_ROLES.join(", ")}`,
        Code.InvalidArgument,
      );
    }
    chars += message.content.length;
  }
  if (chars > limits.maxLlmPromptChars) {
    throw new ConnectError(
      `the messages hold ${chars} characters; the limit is ${limits.maxLlmPromptChars} (max LLM prompt chars: VOXGATE_MAX_LLM_PROMPT_CHARS)`,
      Code.InvalidArgument,
    );
  }
  if (request.maxTokens < 0) {
    throw new ConnectError(
      `max_tokens must be 0 or more, got ${request.maxTokens}`,
      Code.InvalidArgument,
    );
  }
  const { temperature, topP } = request;
  if (temperature !== undefined && !(temperature >= 0 && temperature <= 2)) {
    throw new ConnectError(`temperature must be in 0..2, got ${temperature}`, Code.InvalidArgument);
  }
  if (topP !== undefined && !(topP >= 0 && topP <= 1)) {
    throw new ConnectError(`top_p must be in 0..1, got ${topP}`, Code.InvalidArgument);
  }
  return {
    model: request.model,
    messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
    maxTokens: request.maxTokens,
    ...(temperature !== undefined ? { temperature } : {}),
    ...(topP !== undefined ? { topP } : {}),
    stop: request.stop,
  };
}
