import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import {
  agentTokenVariable,
  intSetting,
  logFormatSpec,
  logLevelSpec,
  setting,
} from "../config/settings.js";
import { ENGINE_KINDS, type EngineKind } from "../engines/engine-factory.js";
import { agentTlsSettings } from "../tls/tls-settings.js";
import { parseGatewayAddress } from "./gateway-address.js";

/** A host-derived agent id: stable for the life of the process, distinct between processes. */
export function defaultAgentId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, "-")
      .slice(0, 48) || "agent";
  return `${host}-${process.pid}`;
}

/** Where an agent keeps clone prompts when `promptCacheDir` is empty: `<tmp>/voxgate-agent-<id>/prompts`. */
export function defaultPromptCacheDir(agentId: string): string {
  return join(tmpdir(), `voxgate-agent-${agentId}`, "prompts");
}

/** Every agent setting; `voxgate agent --help` prints this table. */
export const agentSettings = {
  gateway: setting({
    key: "gateway",
    flag: "gateway",
    env: "VOXGATE_GATEWAY",
    description:
      "gateway agent port(s) to dial: https://host:port (TLS), http://host:port or host:port (cleartext); a comma list, or a name resolving to every replica (one session each, re-resolved)",
    schema: z.string().superRefine((value, context) => {
      for (const entry of value.split(",")) {
        try {
          parseGatewayAddress(entry.trim());
        } catch (err) {
          context.addIssue({ code: "custom", message: (err as Error).message });
          return;
        }
      }
    }),
    defaultValue: "127.0.0.1:8081",
  }),
  gatewayResolveMs: setting({
    key: "gatewayResolveMs",
    flag: "gateway-resolve-ms",
    env: "VOXGATE_GATEWAY_RESOLVE_MS",
    description:
      "how often gateway host names are resolved again to join new replicas and leave gone ones, in ms",
    schema: intSetting(100, 3_600_000),
    defaultValue: 10_000,
  }),
  // Trust and client certificate of an https:// gateway (services/tls/tls-settings.ts).
  ...agentTlsSettings,
  token: setting({
    key: "token",
    flag: "token",
    description: "agent token (scope agent); prefer the variable, flags show in ps",
    ...agentTokenVariable,
  }),
  id: setting({
    key: "id",
    flag: "id",
    env: "VOXGATE_AGENT_ID",
    description: "agent id, stable across reconnects (default: host name and pid)",
    schema: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
      error: "1-64 letters, digits, '.', '_' or '-'",
    }),
    defaultValue: "",
  }),
  slots: setting({
    key: "slots",
    flag: "slots",
    env: "VOXGATE_AGENT_SLOTS",
    description: "calls this agent runs at once (also the number of engine workers)",
    schema: intSetting(1, 256),
    defaultValue: 2,
  }),
  standbyStreams: setting({
    key: "standbyStreams",
    flag: "standby-streams",
    env: "VOXGATE_AGENT_STANDBY_STREAMS",
    description:
      "call streams kept open in advance so a call starts without an offer round trip (at most --slots; 0: off)",
    schema: intSetting(0, 1024),
    defaultValue: 8,
  }),
  priority: setting({
    key: "priority",
    flag: "priority",
    env: "VOXGATE_AGENT_PRIORITY",
    description: "routing priority; lower is preferred",
    schema: intSetting(-1000, 1000),
    defaultValue: 0,
  }),
  engine: setting({
    key: "engine",
    flag: "engine",
    env: "VOXGATE_AGENT_ENGINE",
    description: `engine this agent hosts: ${ENGINE_KINDS.join(", ")}`,
    schema: z.enum(ENGINE_KINDS),
    defaultValue: "espeak" as EngineKind,
  }),
  drainTimeoutMs: setting({
    key: "drainTimeoutMs",
    flag: "drain-timeout-ms",
    env: "VOXGATE_AGENT_DRAIN_TIMEOUT_MS",
    description: "longest wait for running calls on SIGTERM before cancelling them, in ms",
    schema: intSetting(0, 3_600_000),
    defaultValue: 30_000,
  }),
  gatewayKeepaliveMs: setting({
    key: "gatewayKeepaliveMs",
    flag: "gateway-keepalive-ms",
    env: "VOXGATE_GATEWAY_KEEPALIVE_MS",
    description:
      "interval of keepalive pings to the gateway, in ms (the gateway accepts one per 5 s at most)",
    schema: intSetting(5000, 3_600_000),
    defaultValue: 10_000,
  }),
  gatewayKeepaliveTimeoutMs: setting({
    key: "gatewayKeepaliveTimeoutMs",
    flag: "gateway-keepalive-timeout-ms",
    env: "VOXGATE_GATEWAY_KEEPALIVE_TIMEOUT_MS",
    description: "time the gateway has to answer a ping before the agent reconnects, in ms",
    schema: intSetting(100, 600_000),
    defaultValue: 5000,
  }),
  gatewayMaxMessageBytes: setting({
    key: "gatewayMaxMessageBytes",
    flag: "gateway-max-message-bytes",
    env: "VOXGATE_GATEWAY_MAX_MESSAGE_BYTES",
    description:
      "largest message either way on the link to the gateway, in bytes (the gateway's own limit is its VOXGATE_AGENT_MAX_MESSAGE_BYTES)",
    schema: intSetting(1024, 1024 * 1024 * 1024),
    defaultValue: 4 * 1024 * 1024,
  }),
  reconnectMaxMs: setting({
    key: "reconnectMaxMs",
    flag: "reconnect-max-ms",
    env: "VOXGATE_AGENT_RECONNECT_MAX_MS",
    description:
      "cap of the reconnect backoff after losing the gateway, in ms (delays start at 250 ms, double per failed attempt, full jitter)",
    schema: intSetting(250, 600_000),
    defaultValue: 10_000,
  }),
  promptCacheDir: setting({
    key: "promptCacheDir",
    flag: "prompt-cache-dir",
    env: "VOXGATE_AGENT_PROMPT_CACHE_DIR",
    description:
      "directory of the clone prompt cache (default: <tmp>/voxgate-agent-<id>/prompts; survives restarts with a fixed --id)",
    schema: z.string(),
    defaultValue: "",
  }),
  promptCacheBytes: setting({
    key: "promptCacheBytes",
    flag: "prompt-cache-bytes",
    env: "VOXGATE_AGENT_PROMPT_CACHE_BYTES",
    description:
      "most bytes of clone prompts kept on disk, least recently used evicted first; also the largest prompt fetched",
    schema: intSetting(1024 * 1024, 1024 ** 4),
    defaultValue: 2 * 1024 * 1024 * 1024,
  }),
  maxTextChars: setting({
    key: "maxTextChars",
    flag: "max-text-chars",
    env: "VOXGATE_AGENT_MAX_TEXT_CHARS",
    description:
      "longest text one call may carry to this agent's engines, in characters (gateways hold calls to their own, smaller VOXGATE_MAX_TEXT_CHARS first)",
    schema: intSetting(1, 10_000_000),
    defaultValue: 100_000,
  }),
  maxReferenceBytes: setting({
    key: "maxReferenceBytes",
    flag: "max-reference-bytes",
    env: "VOXGATE_AGENT_MAX_REFERENCE_BYTES",
    description: "largest reference audio CreateClonePrompt accepts, in bytes",
    schema: intSetting(1024, 1024 * 1024 * 1024),
    defaultValue: 32 * 1024 * 1024,
  }),
  engineUrl: setting({
    key: "engineUrl",
    flag: "engine-url",
    env: "VOXGATE_AGENT_ENGINE_URL",
    description:
      "model server of --engine openai-http, qwen3-http or openai-llm, http(s)://host:port (on the GPU host)",
    schema: z.string().regex(/^$|^https?:\/\/[^\s/?#@]+(\/[^\s?#]*)?$/, {
      error: "must be an http:// or https:// URL without credentials, query or fragment",
    }),
    defaultValue: "",
  }),
  engineApiKey: setting({
    key: "engineApiKey",
    flag: undefined,
    env: "VOXGATE_AGENT_ENGINE_API_KEY",
    description: "API key sent to the model server as a bearer token; never logged",
    schema: z.string(),
    defaultValue: "",
  }),
  engineModel: setting({
    key: "engineModel",
    flag: "engine-model",
    env: "VOXGATE_AGENT_ENGINE_MODEL",
    description: "model name sent to an openai-http server (empty: tts-1)",
    schema: z.string().max(128),
    defaultValue: "",
  }),
  engineModelSize: setting({
    key: "engineModelSize",
    flag: "engine-model-size",
    env: "VOXGATE_AGENT_ENGINE_MODEL_SIZE",
    description: "model size a qwen3-http server runs; clone prompts are tied to it (empty: 1.7b)",
    schema: z.string().regex(/^[A-Za-z0-9._-]{0,32}$/, { error: "e.g. 1.7b or 0.6b" }),
    defaultValue: "",
  }),
  engineVoices: setting({
    key: "engineVoices",
    flag: "engine-voices",
    env: "VOXGATE_AGENT_ENGINE_VOICES",
    description:
      "comma-separated voices of the model server, used when it lists none (empty: the API's known voices)",
    schema: z.union([
      z.array(z.string()),
      z.string().transform((text) =>
        text
          .split(",")
          .map((v) => v.trim())
          .filter((v) => v !== ""),
      ),
    ]),
    defaultValue: [] as string[],
  }),
  gpuPollMs: setting({
    key: "gpuPollMs",
    flag: "gpu-poll-ms",
    env: "VOXGATE_AGENT_GPU_POLL_MS",
    description:
      "interval of GPU readings for heartbeats (nvidia-smi on PATH, or the tinybox node's /v1/metrics), in ms; 0: off",
    schema: intSetting(0, 3_600_000),
    defaultValue: 5000,
  }),
  enginePromptsDir: setting({
    key: "enginePromptsDir",
    flag: "engine-prompts-dir",
    env: "VOXGATE_AGENT_ENGINE_PROMPTS_DIR",
    description:
      "prompt store directory of a qwen3-http server on this host (its local.prompts_dir); cloning needs it",
    schema: z.string().max(4096),
    defaultValue: "",
  }),
  engineLlmModels: setting({
    key: "engineLlmModels",
    flag: "engine-llm-models",
    env: "VOXGATE_AGENT_ENGINE_LLM_MODELS",
    description:
      "comma-separated language models of --engine openai-llm or tinybox-http, routed by these names (openai-llm, empty: the server's GET /v1/models)",
    schema: z.union([
      z.array(z.string()),
      z.string().transform((text) =>
        text
          .split(",")
          .map((v) => v.trim())
          .filter((v) => v !== ""),
      ),
    ]),
    defaultValue: [] as string[],
  }),
  engineResponseFormat: setting({
    key: "engineResponseFormat",
    flag: "engine-response-format",
    env: "VOXGATE_AGENT_ENGINE_RESPONSE_FORMAT",
    description:
      "audio asked of an openai-http server: wav (its header gives the rate) or pcm (raw 16-bit mono; needs --engine-sample-rate-hz)",
    schema: z.enum(["pcm", "wav"]),
    defaultValue: "wav" as "pcm" | "wav",
  }),
  engineSampleRateHz: setting({
    key: "engineSampleRateHz",
    flag: "engine-sample-rate-hz",
    env: "VOXGATE_AGENT_ENGINE_SAMPLE_RATE_HZ",
    description:
      "sample rate of a model server's raw PCM, in Hz (0: unknown; WAV answers give their own rate, raw PCM of unknown rate is refused)",
    schema: intSetting(0, 192_000),
    defaultValue: 0,
  }),
  engineTimeoutMs: setting({
    key: "engineTimeoutMs",
    flag: "engine-timeout-ms",
    env: "VOXGATE_AGENT_ENGINE_TIMEOUT_MS",
    description:
      "longest wait for the model server's answer to start and between two pieces of it, in ms",
    schema: intSetting(100, 3_600_000),
    defaultValue: 120_000,
  }),
  engineDiscoveryTimeoutMs: setting({
    key: "engineDiscoveryTimeoutMs",
    flag: "engine-discovery-timeout-ms",
    env: "VOXGATE_AGENT_ENGINE_DISCOVERY_TIMEOUT_MS",
    description: "longest wait for the model server's voice list at start, in ms",
    schema: intSetting(100, 600_000),
    defaultValue: 10_000,
  }),
  engineMaxResponseBytes: setting({
    key: "engineMaxResponseBytes",
    flag: "engine-max-response-bytes",
    env: "VOXGATE_AGENT_ENGINE_MAX_RESPONSE_BYTES",
    description: "largest answer of one model server request (audio or clone prompt), in bytes",
    schema: intSetting(1024, 4 * 1024 * 1024 * 1024),
    defaultValue: 64 * 1024 * 1024,
  }),
  logLevel: logLevelSpec,
  logFormat: logFormatSpec,
};
