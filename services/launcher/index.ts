export {
  type AgentProcess,
  type AgentProcessOptions,
  superviseAgentProcess,
} from "./agent-process.js";
