/**
 * StoryForge compatibility: the Tinybox node API StoryForge Cloud calls, served over the typed
 * services in process, the media fetcher that reads Cloud's URLs on the gateway, and the worker
 * that takes Cloud's produce-audio jobs.
 */
export type { CallTags } from "./call-tags.js";
export { createCallTags } from "./call-tags.js";
export type { ClipVoices } from "./clip-voices.js";
export { createClipVoices, isUrlLike } from "./clip-voices.js";
export type { HostMetrics, HostMetricsReader } from "./host-metrics.js";
export { createHostMetricsReader } from "./host-metrics.js";
export { createLlmServicePort } from "./llm-port.js";
export type { FetchedMedia, MediaFetcher, MediaFetcherOptions } from "./media-fetcher.js";
export { createMediaFetcher } from "./media-fetcher.js";
export type { AbortHook, LlmPort, StoryForgeFrontendOptions } from "./storyforge-frontend.js";
export {
  createStoryForgeFrontend,
  createUnavailableLlm,
  GENDER_F0_THRESHOLD_HZ,
  STORYFORGE_WORKER_PRINCIPAL,
  VOICE_CLIP_SAMPLE_TEXT,
} from "./storyforge-frontend.js";
export { isStoryForgeError, StoryForgeError, toStoryForgeError } from "./storyforge-http.js";
export type { StoryForgeOptions } from "./storyforge-options.js";
export { DEFAULT_STORYFORGE_OPTIONS, storyforgeOptionsFromSettings } from "./storyforge-options.js";
export {
  STORYFORGE_ROUTES,
  STORYFORGE_SCHEMAS,
  type StoryForgeRouteId,
} from "./storyforge-routes.js";
export type { StoryForgeRuntime, StoryForgeRuntimeOptions } from "./storyforge-runtime.js";
export { createStoryForgeRuntime } from "./storyforge-runtime.js";
export { storyforgeSettings } from "./storyforge-settings.js";
