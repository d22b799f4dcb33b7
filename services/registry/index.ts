export type {
  BackendCriteria,
  BackendRegistration,
  GpuBackendClient,
  RegisteredBackend,
} from "./backend.js";
export { isBackendFault } from "./backend-fault.js";
export {
  type BackendEvent,
  type BackendLease,
  type BackendRegistry,
  type BackendRegistryOptions,
  type CallOutcome,
  createBackendRegistry,
} from "./backend-registry.js";
