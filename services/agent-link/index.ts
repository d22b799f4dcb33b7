export {
  type AgentPortLimits,
  type AgentPortServer,
  type AgentPortServerOptions,
  createAgentPortServer,
  defaultAgentPortLimits,
  kSessionMetadata,
} from "./agent-port-server.js";
export { type AgentRequest, prepareAgentRequest } from "./agent-request-guard.js";
export { AgentSession, type AgentSessionState } from "./agent-session.js";
export {
  type AgentCallOpener,
  type AgentTransportOptions,
  createAgentTransport,
  kRequestIdHeader,
} from "./agent-transport.js";
export {
  createPromptGrant,
  type DeliverPromptOptions,
  deliverPrompt,
  type PromptGrant,
} from "./prompt-delivery.js";
export type { OpenedPrompt, PromptSource } from "./prompt-source.js";
