/**
 * Token scopes. Client scopes open public services; the agent scope opens the agent port and
 * nothing else, so a leaked GPU-host token cannot call the public API and a client token cannot
 * pose as a GPU host.
 */

/** Scopes a client token may hold. */
export const CLIENT_SCOPES = ["tts", "voices", "jobs", "admin", "storyforge", "metrics"] as const;

/** Every scope. */
export const SCOPES = [...CLIENT_SCOPES, "agent"] as const;

/** A token scope. */
export type Scope = (typeof SCOPES)[number];

/** A client scope. */
export type ClientScope = (typeof CLIENT_SCOPES)[number];

/** Returns whether `value` is a known scope. */
export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/**
 * Name the StoryForge frontend's routes give the gate in place of a service name: its calls need
 * the `storyforge` scope.
 */
export const STORYFORGE_SURFACE = "voxgate.storyforge.CloudSurface";

/** Name the `/metrics` route gives the gate: reading metrics needs the `metrics` scope only. */
export const METRICS_SURFACE = "voxgate.metrics.Prometheus";

/**
 * Scope each public service requires, by fully-qualified service name. Services absent here are
 * open without a token when {@link OPEN_SERVICES} lists them (health and reflection).
 */
const SERVICE_SCOPES: ReadonlyMap<string, ClientScope> = new Map([
  ["voxgate.v1.TtsService", "tts"],
  // Text generation serves the same callers as speech (StoryForge's /v1/llm beside /v1/tts).
  ["voxgate.v1.LlmService", "tts"],
  ["voxgate.v1.VoiceService", "voices"],
  ["voxgate.v1.PromptStoreService", "voices"],
  ["voxgate.v1.JobService", "jobs"],
  ["voxgate.v1.BackendAdminService", "admin"],
  // The StoryForge compatibility surface (services/storyforge): one scope for all of Cloud's calls,
  // so a token handed to StoryForge Cloud opens that surface and no typed service directly.
  [STORYFORGE_SURFACE, "storyforge"],
  // Read-only metrics for scrapers: a token that can read them can do nothing else.
  [METRICS_SURFACE, "metrics"],
]);

/**
 * Services anyone may call without a token: health, for load balancers; server reflection, which
 * tells only the schema (published without a token at /openapi.json and in the package anyway).
 */
const OPEN_SERVICES: ReadonlySet<string> = new Set([
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
]);

/** What a public service requires: a scope, nothing (open), or unknown service. */
export type ServiceAccess =
  | { kind: "scope"; scope: ClientScope }
  | { kind: "open" }
  | { kind: "unknown" };

/** Returns what calling `serviceTypeName` (e.g. `voxgate.v1.TtsService`) requires. */
export function serviceAccess(serviceTypeName: string): ServiceAccess {
  const scope = SERVICE_SCOPES.get(serviceTypeName);
  if (scope) return { kind: "scope", scope };
  if (OPEN_SERVICES.has(serviceTypeName)) return { kind: "open" };
  return { kind: "unknown" };
}
