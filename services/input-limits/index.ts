export {
  checkJsonText,
  createJsonLimitScanner,
  DEFAULT_MAX_JSON_DEPTH,
  isJsonLimitError,
  JsonLimitError,
  type JsonLimitScanner,
  type JsonLimits,
  kJsonBytesSetting,
  kJsonDepthSetting,
  readJsonText,
} from "./json-limits.js";
export { guardRpcBody, type RpcBodyGuardOptions, rpcBodyFormat } from "./rpc-body-guard.js";
