export {
  checkJsonText,
  createJsonLimitScanner,
  isJsonLimitError,
  JsonLimitError,
  type JsonLimitScanner,
  type JsonLimits,
  kJsonBytesSetting,
  kJsonDepthSetting,
  readJsonText,
} from "./json-limits.js";
export { guardRpcBody, type RpcBodyGuardOptions, rpcBodyFormat } from "./rpc-body-guard.js";
