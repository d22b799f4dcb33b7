/** Backends the gateway reaches itself (agents dial in instead: see services/agent-link). */
export {
  createServerlessBackend,
  type ServerlessBackendOptions,
  type StaticBackendConfig,
  serverlessEntryDefaults,
  staticBackendsSchema,
} from "./serverless/index.js";
