export {
  attachBodyRateGuard,
  type BodyRateGuardOptions,
} from "./body-rate-guard.js";
export {
  attachConnectionBudget,
  type ConnectionBudget,
  type ConnectionBudgetOptions,
} from "./connection-budget.js";
export { attachH2SessionGuard, type H2SessionGuardOptions } from "./h2-session-guard.js";
export {
  createStreamBudget,
  type StreamBudget,
  type StreamBudgetOptions,
} from "./stream-budget.js";
