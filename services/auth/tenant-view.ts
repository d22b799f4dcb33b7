import type { Principal } from "./token-store.js";

/**
 * Tenant of records that have no owner: cloned voices made before tenants existed without a
 * recorded token, and calls made inside the gateway without a principal.
 */
export const DEFAULT_TENANT = "default";

/**
 * What one caller may see of tenant-owned records (cloned voices, their prompts, jobs).
 * `tenant` owns what the caller makes; `all` lets it see and change every tenant's records.
 */
export interface TenantView {
  /** Tenant that owns what this caller creates. */
  tenant: string;
  /** Whether the caller sees every tenant's records (`admin` scope, or an in-gateway call). */
  all: boolean;
}

/**
 * The view of `principal`. Tokens with the `admin` scope see every tenant. A call without a
 * principal comes from inside the gateway (public calls of every scoped service always carry one:
 * the request gate refuses them otherwise), so it sees all and owns under {@link DEFAULT_TENANT}.
 */
export function tenantViewOf(principal: Principal | undefined): TenantView {
  if (!principal) return { tenant: DEFAULT_TENANT, all: true };
  return { tenant: principal.tenant, all: principal.scopes.has("admin") };
}
