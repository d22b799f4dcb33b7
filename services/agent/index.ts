export {
  Agent,
  type AgentLinkSettings,
  type AgentOptions,
  type AgentState,
  agentLinkOptionsFromSettings,
  kMaxHelloPromptDigests,
} from "./agent.js";
export {
  AgentFleet,
  type AgentFleetOptions,
  type AgentFleetState,
  parseGatewayList,
} from "./agent-fleet.js";
export { agentSettings, defaultAgentId, defaultPromptCacheDir } from "./agent-settings.js";
export { type BackoffOptions, backoffDelayMs, defaultBackoff } from "./backoff.js";
export {
  type CallDispatcher,
  type CallDispatcherOptions,
  createCallDispatcher,
} from "./call-dispatcher.js";
export {
  type CallPromptChannel,
  type CallPromptChannelOptions,
  createCallPromptChannel,
} from "./call-prompt-channel.js";
export {
  createPromptCache,
  type PromptCache,
  type PromptCacheOptions,
  PromptDigestMismatchError,
  sha256Hex,
} from "./prompt-cache.js";
