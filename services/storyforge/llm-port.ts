import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { LlmService } from "../../gen/voxgate/v1/llm_pb.js";
import { completionId, parseChatRequest } from "../openai/chat-completions.js";
import { isOpenAiError } from "../openai/openai-error.js";
import type { LlmPort } from "./storyforge-frontend.js";
import { StoryForgeError } from "./storyforge-http.js";

/**
 * Cloud's `/v1/llm` over LlmService (in process): the OpenAI chat body is read as the
 * OpenAI-compatible frontend reads it, generated through `LlmService.Generate` (routed to a
 * backend with FEATURE_GENERATE_TEXT serving the model), and answered as an OpenAI
 * `chat.completion` (Cloud reads `choices[0].message.content`). No such backend is Cloud's soft
 * error `llm_unavailable`, naming the model and the capability.
 */
export function createLlmServicePort(transport: Transport): LlmPort {
  const llm = createClient(LlmService, transport);
  return {
    async complete(body, call) {
      let request: ReturnType<typeof parseChatRequest>["request"];
      try {
        request = parseChatRequest({ ...body, stream: false }).request;
      } catch (err) {
        if (isOpenAiError(err)) throw new StoryForgeError("bad_request", err.message);
        throw err;
      }
      let answer: Awaited<ReturnType<typeof llm.generate>>;
      try {
        answer = await llm.generate(request, call);
      } catch (err) {
        const error = ConnectError.from(err);
        if (
          error.code === Code.Unavailable ||
          error.code === Code.NotFound ||
          error.code === Code.FailedPrecondition
        ) {
          throw new StoryForgeError(
            "llm_unavailable",
            `${error.rawMessage} (model ${String(request.model)}; needs a backend with FEATURE_GENERATE_TEXT)`,
          );
        }
        throw err;
      }
      return {
        id: completionId(),
        object: "chat.completion",
        created: Math.floor(Date.now() / 1000),
        model: answer.model || request.model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: answer.text },
            finish_reason: answer.finishReason || "stop",
          },
        ],
        usage: {
          prompt_tokens: answer.promptTokens,
          completion_tokens: answer.completionTokens,
          total_tokens: answer.promptTokens + answer.completionTokens,
        },
      };
    },
  };
}
