/**
 * Engines over the StoryForge Tinybox compute node (STORYFORGE.md §3): its TTS engines (`xtts`,
 * `tortoise`, `styletts2` from `GET /v1/engines`) through `POST /v1/tts`, speaker classifiers
 * (`/v1/audio/age`, `/v1/audio/gender`), analysis (`/v1/audio/analyze`), its LLM (`/v1/llm`),
 * cancel (`/v1/jobs/abort`) and GPU figures (`/v1/metrics`), so a node runs unchanged behind an
 * agent.
 *
 * Where the node takes only a URL (the reference clip of xtts and styletts2, the audio of
 * `/v1/audio/analyze`), the agent serves the bytes it got from the gateway at a one-time URL on
 * 127.0.0.1 (see `loopback-file-server.ts`): the node never reaches object storage.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import {
  EngineInputError,
  EngineUnavailableError,
  SynthesisFailedError,
  UnknownVoiceError,
} from "../engine-errors.js";
import type {
  EngineAnalysis,
  EngineAudioChunk,
  EngineInfo,
  EngineSynthesisRequest,
  GpuReport,
  PcmFormat,
  TtsEngine,
} from "../tts-engine.js";
import { createLoopbackFileServer, type LoopbackFileServer } from "./loopback-file-server.js";
import { createEngineCalls } from "./model-server-base.js";
import { createModelServerClient, type ModelServerClient } from "./model-server-client.js";
import { completionDelta } from "./openai-llm-engine.js";
import { readPcmStream } from "./pcm-stream.js";

/** Engine id of the node's non-speaking engine (classifiers, analysis, LLM). */
export const TINYBOX_ENGINE_ID = "tinybox";

/** The node's TTS engines when `GET /v1/engines` does not answer (Cloud's own fallback). */
export const TINYBOX_DEFAULT_ENGINES = ["xtts", "tortoise", "styletts2"] as const;

/** The node's LLM model when none is configured: the one StoryForge Cloud always asks for. */
export const TINYBOX_DEFAULT_LLM_MODEL = "google/gemma-2-9b-it";

/** Tortoise's built-in voices (the StoryForge UI's list); `voice` is the name. */
export const TORTOISE_VOICES = [
  "tom",
  "angie",
  "applejack",
  "daniel",
  "deniro",
  "emma",
  "freeman",
  "geralt",
  "halle",
  "jlaw",
  "lj",
  "mol",
  "myself",
  "pat",
  "pat2",
  "rainbow",
  "snakes",
  "tim_reynolds",
  "weaver",
  "william",
] as const;

/** `SynthesizeRequest.params` passed on to `/v1/tts` unchanged (StoryForge's optional fields). */
export const TINYBOX_TTS_PARAMS = [
  "delivery",
  "styletts2_alpha",
  "styletts2_beta",
  "styletts2_steps",
  "styletts2_scale",
  "gpu",
  "threads",
] as const;

// Fields sent as numbers; the rest as strings.
const NUMERIC_PARAMS = new Set([
  "styletts2_alpha",
  "styletts2_beta",
  "styletts2_steps",
  "styletts2_scale",
  "gpu",
  "threads",
]);

/** Options of {@link createTinyboxEngines}. */
export interface TinyboxEngineOptions {
  /** Base URL of the node, e.g. `http://100.75.30.1:8790`. */
  baseUrl: string;
  /** The node's bearer token (`TBCN_TOKEN_FILE` on the node); never logged. */
  apiKey?: string;
  /** LLM models the node's `/v1/llm` serves. @default [TINYBOX_DEFAULT_LLM_MODEL] */
  llmModels?: readonly string[];
  /** Sample rate announced before the node's WAV says otherwise, in Hz. @default 24000 */
  sampleRateHz?: number;
  /** Longest wait for an answer (the node answers whole), in ms. @default 120000 */
  timeoutMs?: number;
  /** Longest wait for `/v1/engines` at start, in ms. @default 10000 */
  discoveryTimeoutMs?: number;
  /** Largest answer of one request, in bytes. @default 67108864 */
  maxResponseBytes?: number;
  /** How long a one-time URL stays valid, in ms. @default 600000 */
  urlTtlMs?: number;
  /** Logger; engines log through `log.child({ component: "tinybox-engine" })`. */
  log?: Logger;
}

/**
 * Creates one speaking engine per TTS engine the node lists (`GET /v1/engines`, else xtts,
 * tortoise, styletts2) and one non-speaking `tinybox` engine with the classifiers, analysis, LLM
 * and GPU report. They share one HTTP client and one loopback file server.
 *
 * Synthesis posts `{engine, voice, text, upload: false, job_id, ...params}` to `/v1/tts`: `voice`
 * is a tortoise voice name, or for xtts and styletts2 a one-time loopback URL of the clone prompt,
 * which for these engines is the reference clip itself (`createClonePrompt` keeps the reference
 * audio as the prompt). The answer's `audio_b64` (WAV) is decoded and streamed on; `{ok: false}`
 * fails the call. A caller who leaves aborts the request and posts `/v1/jobs/abort {job_id}`.
 */
export async function createTinyboxEngines(options: TinyboxEngineOptions): Promise<TtsEngine[]> {
  const log = options.log?.child({ component: "tinybox-engine" });
  const client = createModelServerClient({
    engineId: TINYBOX_ENGINE_ID,
    baseUrl: options.baseUrl,
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.maxResponseBytes === undefined
      ? {}
      : { maxResponseBytes: options.maxResponseBytes }),
  });
  const sampleRateHz = options.sampleRateHz ?? 24_000;
  const urlTtlMs = options.urlTtlMs ?? 600_000;
  const files = createLoopbackFileServer();
  const engineIds = await discoverEngines(client, options.discoveryTimeoutMs ?? 10_000, log);
  const llmModels =
    options.llmModels && options.llmModels.length > 0
      ? [...options.llmModels]
      : [TINYBOX_DEFAULT_LLM_MODEL];
  log?.info({ url: client.baseUrl, engines: engineIds, llmModels }, "engine ready");
  let open = engineIds.length + 1;
  const closeShared = async () => {
    open--;
    if (open === 0) await files.close();
  };
  return [
    ...engineIds.map((id) =>
      createSpeakingEngine({ id, client, files, sampleRateHz, urlTtlMs, closeShared, log }),
    ),
    createNodeEngine({ client, files, urlTtlMs, llmModels, closeShared }),
  ];
}

interface Shared {
  client: ModelServerClient;
  files: LoopbackFileServer;
  urlTtlMs: number;
  closeShared(): Promise<void>;
}

function createSpeakingEngine(
  shared: Shared & { id: string; sampleRateHz: number; log: Logger | undefined },
): TtsEngine {
  const { id, client, files, urlTtlMs, log } = shared;
  const byName = id === "tortoise";
  const voiceIds: string[] = byName ? [...TORTOISE_VOICES] : [];
  const info: EngineInfo = {
    id,
    version: "1",
    modelFamily: id,
    modelSize: "",
    format: { sampleRateHz: shared.sampleRateHz, channels: 1 },
    voices: voiceIds.map((v) => ({ id: v, name: v, languages: ["en"], gender: "" })),
    supportsSpeed: false,
    // xtts and styletts2 speak from a reference clip: the "prompt" is that clip.
    supportsCloning: !byName,
  };
  const calls = createEngineCalls(id);

  async function* synthesize(
    request: EngineSynthesisRequest,
    signal: AbortSignal,
  ): AsyncIterable<EngineAudioChunk> {
    let voice: string;
    let offer: Awaited<ReturnType<LoopbackFileServer["offer"]>> | undefined;
    if (request.clonePrompt) {
      if (byName) {
        throw new EngineInputError(id, "tortoise speaks its built-in voices only, not clones");
      }
      offer = await files.offer(request.clonePrompt.bytes, "audio/wav", urlTtlMs);
      voice = offer.url;
    } else if (byName) {
      voice = request.voiceId || (voiceIds[0] as string);
      if (!voiceIds.includes(voice)) throw new UnknownVoiceError(id, voice, voiceIds.slice(0, 8));
    } else {
      throw new EngineInputError(
        id,
        `${id} speaks from a reference clip: clone a voice from one (CreateVoice) and speak with it`,
      );
    }
    const jobId = `vx-${randomBytes(8).toString("hex")}`;
    const json: Record<string, unknown> = {
      engine: id,
      voice,
      text: request.text,
      // voxgate stores nothing on the node's side; the audio comes back in the answer.
      upload: false,
      job_id: jobId,
    };
    for (const key of TINYBOX_TTS_PARAMS) {
      const value = request.params?.[key];
      if (value === undefined || value === "") continue;
      json[key] = NUMERIC_PARAMS.has(key) ? Number(value) : value;
      if (NUMERIC_PARAMS.has(key) && !Number.isFinite(json[key])) {
        throw new EngineInputError(
          id,
          `param ${key} must be a number, got "${value.slice(0, 40)}"`,
        );
      }
    }
    const context = { engineId: id, voiceId: byName ? voice : "", knownVoiceIds: voiceIds };
    const onAbort = () => {
      // Best effort: the node kills the job's processes; its answer does not matter.
      client
        .request({
          method: "POST",
          path: "/v1/jobs/abort",
          json: { job_id: jobId },
          signal: new AbortController().signal,
          timeoutMs: 8000,
        })
        .then((r) => r.discard())
        .catch((err: unknown) =>
          log?.warn({ err: { message: (err as Error).message }, jobId }, "job abort failed"),
        );
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      yield* calls.stream(signal, context, async function* (inner) {
        const response = await client.request({
          method: "POST",
          path: "/v1/tts",
          accept: "application/json",
          signal: inner,
          json,
        });
        const answer = (await response.json()) as Record<string, unknown>;
        const encoded = answer.audio_b64;
        if (answer.ok === false || typeof encoded !== "string" || encoded === "") {
          const why = [answer.error, answer.detail]
            .filter((v) => typeof v === "string")
            .join(" :: ");
          throw new SynthesisFailedError(
            id,
            `the node answered no audio${why ? `: ${why.slice(0, 300)}` : " (no audio_b64)"}`,
          );
        }
        const contentType = typeof answer.content_type === "string" ? answer.content_type : "";
        if (contentType && !/wav/i.test(contentType)) {
          throw new SynthesisFailedError(id, `the node answered ${contentType}; voxgate takes WAV`);
        }
        let format: PcmFormat | undefined;
        const pcmOptions = {
          engineId: id,
          format: undefined,
          adoptWavFormat: true,
          onFormat: (f: PcmFormat) => {
            format = f;
          },
        };
        for await (const pcm of readPcmStream([Buffer.from(encoded, "base64")], pcmOptions)) {
          yield { pcm, ...(format ? { format } : {}) };
        }
      });
    } finally {
      signal.removeEventListener("abort", onAbort);
      offer?.revoke();
    }
  }

  return {
    info,
    synthesize,
    ...(byName
      ? {}
      : {
          async createClonePrompt(request) {
            if (request.referenceAudio.byteLength === 0) {
              throw new EngineInputError(id, "the reference audio is empty");
            }
            if (request.contentType !== "audio/wav") {
              throw new EngineInputError(
                id,
                `${id} takes a WAV reference clip, got ${request.contentType}`,
              );
            }
            return { prompt: request.referenceAudio, contentType: "audio/wav" };
          },
        }),
    async close() {
      calls.close();
      await shared.closeShared();
    },
  };
}

function createNodeEngine(shared: Shared & { llmModels: string[] }): TtsEngine {
  const { client, files, urlTtlMs, llmModels } = shared;
  const id = TINYBOX_ENGINE_ID;
  const calls = createEngineCalls(id);
  const context = { engineId: id, voiceId: "", knownVoiceIds: [] };
  const postJson = async (path: string, json: Record<string, unknown>, signal: AbortSignal) => {
    const response = await client.request({
      method: "POST",
      path,
      accept: "application/json",
      signal,
      json,
    });
    const answer = (await response.json()) as Record<string, unknown>;
    if (answer?.ok === false) {
      throw new SynthesisFailedError(
        id,
        `${path} failed: ${String(answer.error ?? "").slice(0, 300)}`,
      );
    }
    return answer;
  };
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

  return {
    info: {
      id,
      version: "1",
      modelFamily: "tinybox",
      modelSize: "",
      format: { sampleRateHz: 24_000, channels: 1 },
      voices: [],
      supportsSpeed: false,
      speaks: false,
      analysisKinds: ["basic", "pitch", "gender", "age"],
      textModels: llmModels,
    },
    // biome-ignore lint/correctness/useYield: this engine never speaks; the host never asks it to
    async *synthesize() {
      throw new EngineUnavailableError(id, "the tinybox engine does not speak");
    },
    generate(request, signal) {
      return calls.stream(signal, context, async function* (inner) {
        const answer = await postJson(
          "/v1/llm",
          {
            model: request.model || llmModels[0],
            messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
            ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
            ...(request.maxTokens > 0 ? { max_tokens: request.maxTokens } : {}),
            ...(request.topP !== undefined ? { top_p: request.topP } : {}),
            ...(request.stop.length > 0 ? { stop: [...request.stop] } : {}),
          },
          inner,
        );
        yield completionDelta(answer, id);
      });
    },
    analyze(request, signal) {
      return calls.run(signal, context, async (inner) => {
        const wants = (k: "basic" | "pitch" | "gender" | "age") =>
          request.kinds.length === 0 || request.kinds.includes(k);
        const audio_b64 = Buffer.from(request.audio).toString("base64");
        const result: EngineAnalysis = {};
        const features: Record<string, number | string> = {};
        if (wants("age")) {
          const answer = await postJson("/v1/audio/age", { audio_b64 }, inner);
          const age = num(answer.age_years);
          if (age !== undefined) result.ageYears = age;
        }
        if (wants("gender")) {
          const answer = await postJson("/v1/audio/gender", { audio_b64 }, inner);
          if (answer.gender === "male" || answer.gender === "female") result.gender = answer.gender;
          const confidence = num(answer.confidence);
          if (confidence !== undefined) result.genderConfidence = confidence;
        }
        if (wants("basic") || wants("pitch")) {
          // The node's analysis takes a URL only: serve the bytes once, on loopback.
          const offer = await files.offer(
            request.audio,
            request.contentType || "audio/wav",
            urlTtlMs,
          );
          try {
            const answer = await postJson("/v1/audio/analyze", { url: offer.url }, inner);
            const duration = num(answer.duration_s);
            if (duration !== undefined) result.durationMs = duration * 1000;
            const lufs = num(answer.lufs_i);
            if (lufs !== undefined) result.loudnessLufs = lufs;
            const figures = answer.features;
            if (figures && typeof figures === "object") {
              for (const [key, value] of Object.entries(figures).slice(0, 64)) {
                if (typeof value === "number" || typeof value === "string") features[key] = value;
              }
              const f0 = num((figures as Record<string, unknown>).f0_hz_median);
              if (f0 !== undefined) result.medianF0Hz = f0;
            }
          } finally {
            offer.revoke();
          }
        }
        if (Object.keys(features).length > 0) result.features = features;
        return result;
      });
    },
    async gpuReport(signal) {
      const response = await client.request({
        method: "GET",
        path: "/v1/metrics",
        accept: "application/json",
        signal,
        timeoutMs: 5000,
      });
      return parseTinyboxMetrics(await response.json());
    },
    async close() {
      calls.close();
      await shared.closeShared();
    },
  };
}

/** Reads the node's `/v1/metrics` answer (`gpus[]`, `processes[]`) into a GPU report. */
export function parseTinyboxMetrics(value: unknown): GpuReport {
  const body = (value ?? {}) as { gpus?: unknown; processes?: unknown };
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
  const gpus = (Array.isArray(body.gpus) ? body.gpus : []).slice(0, 64).map((g, i) => {
    const gpu = (g ?? {}) as Record<string, unknown>;
    const out: GpuReport["gpus"][number] = {
      index: num(gpu.index) ?? i,
      name: typeof gpu.name === "string" ? gpu.name.slice(0, 128) : "",
    };
    const set = <K extends keyof typeof out>(key: K, v: unknown) => {
      const n = num(v);
      if (n !== undefined) (out as unknown as Record<string, unknown>)[key] = n;
    };
    set("utilizationPercent", gpu.util_gpu_pct);
    set("memoryUsedMib", gpu.vram_used_mb);
    set("memoryTotalMib", gpu.vram_total_mb);
    set("powerWatts", gpu.power_w);
    set("temperatureC", gpu.temp_c);
    return out;
  });
  const processes = (Array.isArray(body.processes) ? body.processes : []).slice(0, 12).map((p) => {
    const proc = (p ?? {}) as Record<string, unknown>;
    const out: GpuReport["processes"][number] = {
      pid: num(proc.pid) ?? 0,
      name: typeof proc.name === "string" ? proc.name.slice(0, 128) : "",
    };
    const mem = num(proc.gpu_mem_mb);
    if (mem !== undefined) out.gpuMemoryMib = mem;
    const cpu = num(proc.cpu_pct);
    if (cpu !== undefined) out.cpuPercent = cpu;
    return out;
  });
  return { gpus, processes };
}

async function discoverEngines(
  client: ModelServerClient,
  timeoutMs: number,
  log: Logger | undefined,
): Promise<string[]> {
  try {
    const response = await client.request({
      method: "GET",
      path: "/v1/engines",
      accept: "application/json",
      signal: new AbortController().signal,
      timeoutMs,
    });
    const value = (await response.json()) as { engines?: unknown };
    const ids = (Array.isArray(value?.engines) ? value.engines : []).filter(
      (e): e is string => typeof e === "string" && /^[a-z0-9_-]{1,32}$/.test(e),
    );
    if (ids.length > 0) return [...new Set(ids)];
  } catch (err) {
    log?.warn({ err: { message: (err as Error).message } }, "could not read the node's engines");
  }
  return [...TINYBOX_DEFAULT_ENGINES];
}
