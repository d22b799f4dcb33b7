/** Text generation on backends: the public LlmService. */
export {
  CHAT_ROLES,
  checkGenerateRequest,
  createLlmHandler,
  type LlmHandlerOptions,
  type LlmLimits,
} from "./llm-handler.js";
