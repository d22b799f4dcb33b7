export { parseBearer } from "./bearer.js";
export {
  createRequestGate,
  type GatedRoute,
  type GateResult,
  type RequestGate,
  type RequestGateOptions,
} from "./request-gate.js";
export { type NodeRequest, type NodeResponse, writeRpcError } from "./rpc-error-response.js";
export {
  CLIENT_SCOPES,
  type ClientScope,
  isScope,
  SCOPES,
  type Scope,
  type ServiceAccess,
  serviceAccess,
} from "./scopes.js";
export { DEFAULT_TENANT, type TenantView, tenantViewOf } from "./tenant-view.js";
export { generateToken, hashToken, TOKEN_PREFIX } from "./token-codec.js";
export {
  createTokenStore,
  type Principal,
  type TokenEntry,
  type TokenStore,
} from "./token-store.js";
