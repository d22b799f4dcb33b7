export {
  type ClonePromptSource,
  type ClonePromptWanted,
  kClonePromptSource,
} from "./clone-prompt-source.js";
export {
  type ClonePrompts,
  type ClonePromptsOptions,
  createClonePrompts,
} from "./clone-prompts.js";
export { describeEngines } from "./engine-capabilities.js";
export {
  createEngineHost,
  type EngineHost,
  type EngineHostLimitSettings,
  type EngineHostOptions,
  engineHostLimitsFromSettings,
} from "./engine-host-handler.js";
