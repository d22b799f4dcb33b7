export {
  type AgentPortLimits,
  type AgentPortServer,
  type AgentPortServerOptions,
  createAgentPortServer,
  defaultAgentPortLimits,
  kSessionMetadata,
} from "./agent-port-server.js";
export { AgentSession, type AgentSessionState } from "./agent-session.js";
export { type AgentCallOpener, createAgentTransport, kRequestIdHeader } from "./agent-transport.js";
