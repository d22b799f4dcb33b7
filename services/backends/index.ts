/** Backends the gateway reaches itself (agents dial in instead: see services/agent-link). */
export {
  createServerlessBackend,
  type ServerlessBackendOptions,
  type StaticBackendConfig,
  staticBackendsSchema,
} from "./serverless/index.js";
