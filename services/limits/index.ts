export {
  createSqlUsageStore,
  limitMigrations,
  type SqlUsageStoreOptions,
} from "./sql-usage-store.js";
export { hasLimits, kWindowMs, type TokenLimits, type UsageKind } from "./token-limits.js";
export { createUsageMeter, type UsageMeter, type UsageMeterOptions } from "./usage-meter.js";
export { type UsageDelta, type UsageStore, type UsageTotals, usageKey } from "./usage-store.js";
