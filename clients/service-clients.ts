/**
 * The part of the typed client factory that runs anywhere (Node and browsers): one client per
 * public voxgate service over a given transport, the bearer token interceptor and the checks of
 * the options both factories share. It must not import Node modules: the browser factory
 * (`./browser.ts`) and the web console are bundled from it.
 */
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { Health } from "../gen/health/v1/health_pb.js";
import { BackendAdminService } from "../gen/voxgate/v1/backend_admin_pb.js";
import { JobService } from "../gen/voxgate/v1/job_pb.js";
import { LlmService } from "../gen/voxgate/v1/llm_pb.js";
import { PromptStoreService } from "../gen/voxgate/v1/prompt_store_pb.js";
import { TtsService } from "../gen/voxgate/v1/tts_pb.js";
import { VoiceService } from "../gen/voxgate/v1/voice_pb.js";

/** Wire protocol of a voxgate client; the gateway's public port speaks all three. */
export type VoxgateProtocol = "connect" | "grpc" | "grpc-web";

/** The wire protocols the Node client accepts; browsers take `connect` and `grpc-web`. */
export const VOXGATE_PROTOCOLS: readonly VoxgateProtocol[] = ["connect", "grpc", "grpc-web"];

/** One typed client per public voxgate service, all sharing one transport. */
export interface VoxgateServiceClients {
  /** Speech synthesis: whole clips and streams (`tts` scope). */
  tts: Client<typeof TtsService>;
  /** The voice catalog: presets and cloned voices (`voices` scope). */
  voices: Client<typeof VoiceService>;
  /** Clone prompt blobs (`voices` scope). */
  prompts: Client<typeof PromptStoreService>;
  /** Durable jobs: renders, analyses, batches (`jobs` scope). */
  jobs: Client<typeof JobService>;
  /** The backend registry (`admin` scope). */
  backends: Client<typeof BackendAdminService>;
  /** Language models on backends (`tts` scope). */
  llm: Client<typeof LlmService>;
  /** `grpc.health.v1.Health`; needs no token. */
  health: Client<typeof Health>;
}

/**
 * Binds one typed client per public voxgate service to `transport`, e.g. an in-memory
 * `createRouterTransport` in tests. The caller keeps ownership of the transport.
 */
export function createVoxgateServiceClients(transport: Transport): VoxgateServiceClients {
  return {
    tts: createClient(TtsService, transport),
    voices: createClient(VoiceService, transport),
    prompts: createClient(PromptStoreService, transport),
    jobs: createClient(JobService, transport),
    backends: createClient(BackendAdminService, transport),
    llm: createClient(LlmService, transport),
    health: createClient(Health, transport),
  };
}

/** Adds `Authorization: Bearer <token>` to every request. */
export function bearerToken(token: string): Interceptor {
  const value = `Bearer ${token}`;
  return (next) => (req) => {
    req.header.set("Authorization", value);
    return next(req);
  };
}

/** Default deadline of a call, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Checks `baseUrl`, `timeoutMs` and `token` as both factories take them; returns the parsed URL
 * and the timeout with its default applied.
 *
 * @throws Error naming the option and what it must be.
 */
export function checkCommonOptions(options: {
  baseUrl: string;
  token?: string | undefined;
  timeoutMs?: number | undefined;
}): { url: URL; timeoutMs: number } {
  let url: URL;
  try {
    url = new URL(options.baseUrl);
  } catch {
    throw new Error(`baseUrl "${options.baseUrl}" is not a URL, e.g. http://127.0.0.1:8080`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`baseUrl "${options.baseUrl}" must start with http:// or https://`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new Error(`timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
  }
  const token = options.token;
  // A token with a newline or non-Latin-1 characters would fail on the first call with a
  // confusing header error; refuse it here instead.
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    throw new Error("token must be non-empty printable ASCII without spaces");
  }
  return { url, timeoutMs };
}
