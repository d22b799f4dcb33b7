export { isPromptStoreError, type PromptErrorKind, PromptStoreError } from "./prompt-errors.js";
export {
  assertDigest,
  PROMPT_PREFIX,
  promptBlobKey,
  promptMetadataKey,
  STAGING_PREFIX,
} from "./prompt-keys.js";
export { toPromptRpcError } from "./prompt-rpc-error.js";
export {
  createPromptStore,
  decodePromptPageToken,
  encodePromptPageToken,
  type PromptListOptions,
  type PromptMetadata,
  type PromptRecord,
  type PromptStore,
  type PromptStoreOptions,
} from "./prompt-store.js";
export {
  createPromptStoreHandler,
  fromMetadataMessage,
  type PromptStoreHandlerOptions,
  toPromptMessage,
} from "./prompt-store-handler.js";
export {
  createPromptUploadFrontend,
  PROMPT_UPLOAD_PATH,
  PROMPT_UPLOAD_ROUTE,
  type PromptUploadFrontendOptions,
} from "./prompt-upload-frontend.js";
