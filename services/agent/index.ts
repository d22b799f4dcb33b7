export { Agent, type AgentOptions, type AgentState } from "./agent.js";
export { agentSettings, defaultAgentId } from "./agent-settings.js";
export { type BackoffOptions, backoffDelayMs, defaultBackoff } from "./backoff.js";
export { type CallDispatcher, createCallDispatcher } from "./call-dispatcher.js";
