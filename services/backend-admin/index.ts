export {
  type BackendAdminHandlerOptions,
  createBackendAdminHandler,
} from "./backend-admin-handler.js";
export { toBackendMessage } from "./backend-snapshot.js";
export { renderMetrics } from "./metrics-text.js";
