export { type ClipFacts, clipFacts } from "./relay-audio.js";
export {
  createRelayDebugLog,
  type RelayDebugEvent,
  type RelayDebugLog,
  type RelayDebugLogOptions,
} from "./relay-debug-log.js";
export {
  isRelayError,
  RelayError,
  type RelayErrorBody,
  toRelayError,
  writeRelayError,
} from "./relay-error.js";
export {
  charactersOf,
  createRelayFrontend,
  kRelayMaxListedPrompts,
  type RelayFrontendOptions,
  relayPrompt,
} from "./relay-frontend.js";
export { kRelayModes, type RelayCapability, refuseMode } from "./relay-modes.js";
export { RELAY_ROUTES, RELAY_SCHEMAS, type RelayRouteId } from "./relay-routes.js";
export { kRelayStatusTimeoutMs, type RunPodHealthView, runPodStatus } from "./relay-status.js";
