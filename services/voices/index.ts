export {
  type ClonePromptCallOptions,
  type ClonePromptOrder,
  createClonePrompt,
  type MadeClonePrompt,
} from "./clone-prompt-call.js";
export {
  type ClonePromptResolver,
  type ClonePromptResolverOptions,
  type CloneSelection,
  createClonePromptResolver,
} from "./clone-prompt-resolver.js";
export {
  createReferenceAudioStore,
  type ReferenceAudioStore,
  referenceAudioKey,
} from "./reference-audio-store.js";
export {
  createTenantPromptStore,
  type TenantPromptStoreOptions,
} from "./tenant-prompt-store.js";
export { canChangeVoice, canSpeakPrompt, canUseVoice } from "./voice-access.js";
export { createVoiceAudioTools, type VoiceAudioToolsOptions } from "./voice-audio-tools.js";
export { createVoiceHandler, type VoiceHandlerOptions } from "./voice-handler.js";
export {
  isClonedVoiceId,
  isDigest,
  isPlausibleVoiceId,
  kClonedVoicePrefix,
  newVoiceId,
} from "./voice-id.js";
export { analysisFromJson, analysisToJson, clonedVoiceOf } from "./voice-mapping.js";
export { voiceMigrations } from "./voice-migrations.js";
export {
  decodeVoicePageToken,
  encodeVoicePageToken,
  type VoicePageCursor,
} from "./voice-page-token.js";
export {
  createVoiceRepository,
  type PromptAccess,
  type VoiceDatabase,
  type VoiceListFilter,
  type VoiceRecord,
  type VoiceRepository,
  type VoiceViewer,
} from "./voice-repository.js";
export {
  checkCreateVoiceFields,
  checkUploadSize,
  kVoiceFieldLimits,
} from "./voice-request-checks.js";
export type {
  InspectedAudio,
  PromptModel,
  PromptPutMetadata,
  StoredPrompt,
  VoiceAudioTools,
  VoiceLimits,
  VoicePromptStore,
  VoiceStorage,
} from "./voice-storage.js";
