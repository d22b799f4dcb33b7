export type {
  BackendCriteria,
  BackendRegistration,
  GpuBackendClient,
  RegisteredBackend,
} from "./backend.js";
export { isBackendFault } from "./backend-fault.js";
export {
  type BackendHealth,
  createHealthMachine,
  type HealthMachine,
  type HealthMachineOptions,
  type HealthSignal,
  visibleState,
} from "./backend-health.js";
export {
  type BackendAttempt,
  type BackendCallOptions,
  type BackendChange,
  type BackendEvent,
  type BackendLease,
  type BackendRegistry,
  type BackendRegistryOptions,
  type CallOutcome,
  createBackendRegistry,
  type ProbeResult,
  type RoutingSettings,
  routingOptionsFromSettings,
} from "./backend-registry.js";
export {
  type BreakerTicket,
  type BreakerTransition,
  type CircuitBreaker,
  type CircuitBreakerOptions,
  createCircuitBreaker,
} from "./circuit-breaker.js";
export {
  createHealthProber,
  type HealthProber,
  type HealthProberOptions,
} from "./health-prober.js";
