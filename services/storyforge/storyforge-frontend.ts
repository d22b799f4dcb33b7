import {
  Code,
  ConnectError,
  type ContextValues,
  createClient,
  createContextValues,
  type Transport,
} from "@connectrpc/connect";
import type { Logger } from "pino";
import { AnalysisKind, type AudioAnalysis } from "../../gen/voxgate/v1/analysis_pb.js";
import { VoiceGender } from "../../gen/voxgate/v1/capabilities_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { type Voice, VoiceService } from "../../gen/voxgate/v1/voice_pb.js";
import { ANALYZER_NAME } from "../analysis/audio-analysis.js";
import { decodeAudioForAnalysis, isAudioDecodeError } from "../analysis/decode-audio.js";
import { measureVoiceFeatures } from "../analysis/voice-features.js";
import type { GateResult } from "../auth/request-gate.js";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import { STORYFORGE_SURFACE } from "../auth/scopes.js";
import type { Principal } from "../auth/token-store.js";
import { kCallContext } from "../gateway/call-context.js";
import type { HttpFrontend, HttpRoute } from "../gateway/http-frontend.js";
import { createRouteMatcher, openApiTemplate } from "../gateway/http-route-spec.js";
import type { BackendRegistry } from "../registry/index.js";
import type { CallTags } from "./call-tags.js";
import { createClipVoices, isUrlLike } from "./clip-voices.js";
import { createHostMetricsReader } from "./host-metrics.js";
import type { MediaFetcher } from "./media-fetcher.js";
import {
  type JsonBodyLimits,
  optionalNumber,
  optionalString,
  readJsonObject,
  StoryForgeError,
  toStoryForgeError,
  writeAuthRefusal,
  writeJson,
} from "./storyforge-http.js";
import { STORYFORGE_ROUTES, type StoryForgeRouteId } from "./storyforge-routes.js";

/** How the frontend reaches the LLM path (a typed service of its own; see the GPU-side work). */
export interface LlmPort {
  /**
   * Answers an OpenAI chat-completion body with an OpenAI chat completion.
   * @throws StoryForgeError (soft) or ConnectError, turned into Cloud's soft error.
   */
  complete(
    body: Record<string, unknown>,
    call: { signal: AbortSignal; timeoutMs: number; contextValues: ContextValues },
  ): Promise<unknown>;
}

/** Something else that a Cloud job id may name (the Cloud job worker's renders). */
export type AbortHook = (cloudJobId: string) => Promise<number>;

/** Options of {@link createStoryForgeFrontend}. */
export interface StoryForgeFrontendOptions {
  /**
   * Path prefix the surface is mounted under, e.g. `/storyforge` (Cloud's `GATEWAY_BASE` becomes
   * `https://gateway/storyforge`); "" mounts it at the root, where its `/v1/tts` and
   * `/v1/audio/*` take the place of the REST bindings of the same paths
   * (VOXGATE_STORYFORGE_BASE_PATH).
   */
  basePath: string;
  /** The gateway's in-process transport: every call goes through the typed services. */
  transport: Transport;
  /** The registry: engines, backend metrics, capabilities. */
  registry: BackendRegistry;
  /** Reads the URLs Cloud sends (never handed to a backend). */
  media: MediaFetcher;
  /** Running `/v1/tts` calls by Cloud job id. */
  tags: CallTags;
  /** The LLM path. */
  llm: LlmPort;
  /** Also asked by `/v1/jobs/abort` (the Cloud job worker cancels its render). */
  abortHooks?: readonly AbortHook[];
  /** JSON body limits. */
  limits: JsonBodyLimits;
  /** Deadline of the calls made for Cloud (Cloud itself waits up to 1800 s), in ms. */
  timeoutMs: number;
  /** Root logger. */
  log: Logger;
}

/** Text of the sample `/v1/voice-clips/file` speaks with a voice. */
export const VOICE_CLIP_SAMPLE_TEXT =
  "The lighthouse stood silent on the cliff, and the sea breathed below.";

const LIST_PAGE_SIZE = 500;
const MAX_FIELD_CHARS = 4096;
const DELIVERIES = new Set(["neutral", "calm", "urgent", "dramatic", "shout"]);
const STYLETTS2_PARAMS = [
  "styletts2_alpha",
  "styletts2_beta",
  "styletts2_steps",
  "styletts2_scale",
];
/** Cloud's f0 fallback: a median f0 at or above this is `female` (voice_meta.py). */
export const GENDER_F0_THRESHOLD_HZ = 170;

/**
 * The StoryForge surface: the Tinybox node API StoryForge Cloud calls through its gateway
 * (STORYFORGE.md §1.1), answered over the typed services in process (same gate, limits, logs).
 * `GET <base>/ping` needs no token; every other route needs a Bearer token with the `storyforge`
 * scope and answers in Cloud's styles: FastAPI `{"detail"}` with 401/403 for auth, otherwise a
 * soft `{"ok": false, "error": "<code>: <message>"}` with HTTP 200.
 */
export function createStoryForgeFrontend(options: StoryForgeFrontendOptions): HttpFrontend {
  const { transport, registry, media, tags, log } = options;
  const base = options.basePath.replace(/\/+$/, "");
  const tts = createClient(TtsService, transport);
  const voices = createClient(VoiceService, transport);
  const metrics = createHostMetricsReader();
  const clipVoices = createClipVoices(voices, media);
  const flog = log.child({ component: "storyforge" });

  const callOf = (gate: GateResult, signal: AbortSignal) => ({
    signal,
    timeoutMs: options.timeoutMs,
    contextValues: createContextValues().set(kCallContext, {
      requestId: gate.requestId,
      principal: gate.principal,
      log: flog.child({ requestId: gate.requestId }),
    }),
  });
  type Call = ReturnType<typeof callOf>;

  type Handler = (req: NodeRequest, res: NodeResponse, gate: GateResult) => Promise<void>;
  const route = (open: boolean, handler: Handler): HttpRoute => ({
    service: open ? undefined : STORYFORGE_SURFACE,
    writeError: writeAuthRefusal,
    serve(req, res, gate) {
      handler(req, res, gate).catch((err: unknown) => {
        const error = toStoryForgeError(err);
        const level = error.code === "internal" ? "error" : "info";
        flog[level]({ requestId: gate.requestId, err, code: error.code }, "StoryForge call failed");
        if (!res.headersSent) writeJson(res, error.toJSON(), error.status);
      });
    },
  });
  const notAllowed = (allowed: string): HttpRoute =>
    route(false, async (_req, res) => {
      res.setHeader("allow", allowed);
      writeJson(res, { detail: "Method Not Allowed" }, 405);
    });

  const body = (req: NodeRequest) => readJsonObject(req, options.limits);
  const abortOnClose = (res: NodeResponse, also?: AbortSignal): AbortSignal => {
    const controller = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) {
        controller.abort(new ConnectError("the client closed the connection", Code.Canceled));
      }
    });
    return also ? AbortSignal.any([controller.signal, also]) : controller.signal;
  };

  /** Audio from `{audio_b64}` or `{url}` (read by the gateway). */
  async function audioOf(
    fields: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<{ bytes: Uint8Array; contentType: string }> {
    const b64 = fields.audio_b64;
    if (typeof b64 === "string" && b64.length > 0) {
      const clean = b64.replace(/^data:[^,]*,/, "").replace(/\s+/g, "");
      if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) {
        throw new StoryForgeError("bad_audio_b64", "audio_b64 is not base64");
      }
      return { bytes: Buffer.from(clean, "base64"), contentType: "" };
    }
    const url = optionalString(fields, "url", MAX_FIELD_CHARS);
    if (!url) throw new StoryForgeError("missing_audio", "send audio_b64 or url");
    const fetched = await media.fetch(url, signal);
    return { bytes: fetched.bytes, contentType: fetched.contentType };
  }

  /** Analysis of audio through VoiceService.AnalyzeAudio. */
  async function analyze(
    audio: { bytes: Uint8Array; contentType: string },
    kinds: AnalysisKind[],
    call: Call,
  ): Promise<AudioAnalysis | undefined> {
    const answer = await voices.analyzeAudio(
      { audio: { contentType: wavOrSniffed(audio.contentType), data: audio.bytes }, kinds },
      call,
    );
    return answer.analysis;
  }

  /** The voice id to speak with for Cloud's `voice` (a clip URL is cloned once per clip). */
  const voiceFor = (voice: string, engine: string, name: string, call: Call) =>
    clipVoices.resolve(voice, engine, name, call);

  /** `POST /v1/tts`. */
  const speak: Handler = async (req, res, gate) => {
    const fields = await body(req);
    const text = optionalString(fields, "text", 1_000_000);
    if (!text.trim()) throw new StoryForgeError("missing_text", "text is empty");
    const engine = optionalString(fields, "engine", 64);
    const jobId = optionalString(fields, "job_id", 256);
    const tracked = tags.track(jobId);
    try {
      const call = callOf(gate, abortOnClose(res, tracked.signal));
      const params: Record<string, string> = {};
      const delivery = optionalString(fields, "delivery", 32).toLowerCase();
      if (delivery) {
        if (!DELIVERIES.has(delivery)) {
          throw new StoryForgeError(
            "bad_delivery",
            `delivery must be one of ${[...DELIVERIES].join(", ")}`,
          );
        }
        params.delivery = delivery;
      }
      for (const key of STYLETTS2_PARAMS) {
        const value = optionalNumber(fields, key);
        if (value !== undefined) params[key] = String(value);
      }
      for (const key of ["gpu", "threads"]) {
        const value = optionalNumber(fields, key);
        if (value !== undefined) params[key] = String(Math.trunc(value));
      }
      if (jobId) params.job_id = jobId;
      const voice = await voiceFor(
        optionalString(fields, "voice", MAX_FIELD_CHARS),
        engine,
        "",
        call,
      );
      let backend = "";
      const audio = await tts.synthesize(
        { text, voice, engine, params },
        {
          ...call,
          onHeader: (header) => {
            backend = header.get("x-voxgate-backend") ?? "";
          },
        },
      );
      writeJson(res, {
        ok: true,
        audio_b64: Buffer.from(audio.data).toString("base64"),
        content_type: audio.contentType.split(";")[0] || "audio/wav",
        gpu: optionalNumber(fields, "gpu") ?? null,
        backend,
        voice,
      });
    } finally {
      tracked.done();
    }
  };

  /** `POST /v1/audio/analyze`. */
  const analyzeRoute: Handler = async (req, res, gate) => {
    const fields = await body(req);
    const call = callOf(gate, abortOnClose(res));
    const audio = await audioOf(fields, call.signal);
    const analysis = await analyze(audio, [AnalysisKind.BASIC, AnalysisKind.PITCH], call);
    let pcm: ReturnType<typeof decodeAudioForAnalysis>;
    try {
      pcm = decodeAudioForAnalysis(audio.bytes, "");
    } catch (err) {
      if (isAudioDecodeError(err)) throw new StoryForgeError("bad_audio", err.message);
      throw err;
    }
    writeJson(res, {
      ok: true,
      duration_s: Number(analysis?.durationMs ?? 0n) / 1000,
      lufs_i: analysis?.loudnessLufs ?? null,
      features: measureVoiceFeatures(pcm),
    });
  };

  /** `POST /v1/audio/gender`: a backend classifier, else Cloud's own f0 rule. */
  const genderRoute: Handler = async (req, res, gate) => {
    const fields = await body(req);
    const call = callOf(gate, abortOnClose(res));
    const audio = await audioOf(fields, call.signal);
    const analysis = await analyze(audio, [AnalysisKind.GENDER, AnalysisKind.PITCH], call);
    const classified =
      analysis &&
      analysis.analyzer !== ANALYZER_NAME &&
      (analysis.gender === VoiceGender.FEMALE || analysis.gender === VoiceGender.MALE);
    if (classified) {
      writeJson(res, {
        ok: true,
        gender: analysis.gender === VoiceGender.FEMALE ? "female" : "male",
        confidence: analysis.genderConfidence ?? null,
        method: analysis.analyzer,
      });
      return;
    }
    const f0 = analysis?.medianF0Hz;
    if (f0 === undefined) {
      throw new StoryForgeError(
        "gender_unavailable",
        "no backend classifier answered and the audio has no voiced frames for the f0 estimate",
      );
    }
    writeJson(res, {
      ok: true,
      gender: f0 >= GENDER_F0_THRESHOLD_HZ ? "female" : "male",
      gender_estimated_from_f0: true,
      f0_hz_median: f0,
      method: `median f0 >= ${GENDER_F0_THRESHOLD_HZ} Hz is female (no speaker classifier connected)`,
    });
  };

  /** `POST /v1/audio/age`: a backend classifier, else a soft error (never ok without age). */
  const ageRoute: Handler = async (req, res, gate) => {
    const fields = await body(req);
    const call = callOf(gate, abortOnClose(res));
    const audio = await audioOf(fields, call.signal);
    let analysis: AudioAnalysis | undefined;
    try {
      analysis = await analyze(audio, [AnalysisKind.AGE], call);
    } catch (err) {
      // VoiceService refuses an explicit age request when no backend classifies speakers.
      const error = ConnectError.from(err);
      if (error.code === Code.FailedPrecondition) {
        throw new StoryForgeError("age_classifier_unavailable", error.rawMessage);
      }
      throw err;
    }
    if (analysis?.ageYears === undefined) {
      throw new StoryForgeError(
        "age_classifier_unavailable",
        "no connected backend estimates speaker age (capability FEATURE_CLASSIFY_SPEAKER)",
      );
    }
    writeJson(res, {
      ok: true,
      age_years: analysis.ageYears,
      confidence: analysis.ageConfidence ?? null,
      method: analysis.analyzer,
    });
  };

  /** `POST /v1/llm`. */
  const llmRoute: Handler = async (req, res, gate) => {
    const fields = await body(req);
    const call = callOf(gate, abortOnClose(res));
    writeJson(res, await options.llm.complete(fields, call));
  };

  /** `GET /v1/engines`: engines of connected backends. */
  const enginesRoute: Handler = async (_req, res) => {
    const engines = new Set<string>();
    for (const backend of registry.list()) {
      for (const engine of backend.capabilities.engines) engines.add(engine.id);
    }
    writeJson(res, { ok: true, engines: [...engines].sort() });
  };

  /** `GET /v1/metrics`. */
  const metricsRoute: Handler = async (_req, res) => {
    writeJson(res, metrics.read(registry.list()));
  };

  /** Every voice of the catalog, all pages. */
  async function allVoices(call: Call): Promise<Voice[]> {
    const all: Voice[] = [];
    let pageToken = "";
    do {
      const page = await voices.listVoices({ pageSize: LIST_PAGE_SIZE, pageToken }, call);
      all.push(...page.voices);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return all;
  }

  /** `GET /v1/voice-clips`: the voice catalog as clips, `path` = `/voices/<voice id>`. */
  const clipsRoute: Handler = async (_req, res, gate) => {
    const call = callOf(gate, abortOnClose(res));
    const list = await allVoices(call);
    writeJson(res, {
      ok: true,
      clips: list.map((voice) => ({
        name: voice.name || voice.id,
        path: `/voices/${voice.id}`,
        engine: voice.engine,
        voice_id: voice.id,
      })),
    });
  };

  /** `GET /v1/voice-clips/file?path=/voices/<id>`: a WAV sample spoken with that voice. */
  const clipFileRoute: Handler = async (req, res, gate) => {
    const query = new URL(req.url ?? "/", "http://x").searchParams;
    const path = query.get("path") ?? "";
    if (!path.startsWith("/")) {
      writeJson(res, { detail: "bad_path" }, 400);
      return;
    }
    const match = /^\/voices\/([A-Za-z0-9][A-Za-z0-9._:/+-]{0,127})$/.exec(path);
    if (!match) {
      writeJson(res, { detail: "forbidden" }, 403);
      return;
    }
    const call = callOf(gate, abortOnClose(res));
    let voice: Voice | undefined;
    try {
      voice = (await voices.getVoice({ voiceId: match[1] as string }, call)).voice;
    } catch (err) {
      if (ConnectError.from(err).code === Code.NotFound) {
        writeJson(res, { detail: "not_found" }, 404);
        return;
      }
      throw err;
    }
    if (!voice) {
      writeJson(res, { detail: "not_found" }, 404);
      return;
    }
    const audio = await tts.synthesize(
      { text: VOICE_CLIP_SAMPLE_TEXT, voice: voice.id, engine: voice.engine },
      call,
    );
    res.writeHead(200, {
      "content-type": audio.contentType.split(";")[0] || "audio/wav",
      "content-length": String(audio.data.byteLength),
      "cache-control": "no-store",
    });
    res.end(audio.data);
  };

  /** `POST /v1/voices/train`: a cloned voice from `clip_url`; `voice_ref` is its id. */
  const trainRoute: Handler = async (req, res, gate) => {
    const fields = await body(req);
    const clipUrl = optionalString(fields, "clip_url", MAX_FIELD_CHARS);
    if (!clipUrl) throw new StoryForgeError("missing_clip_url", "");
    const engine = optionalString(fields, "engine", 64);
    const name = optionalString(fields, "name", 200) || "voice";
    const call = callOf(gate, abortOnClose(res));
    if (!isUrlLike(clipUrl)) {
      throw new StoryForgeError(
        "url_not_allowed",
        "clip_url must be a URL under a configured base",
      );
    }
    const voiceId = await voiceFor(clipUrl, engine, name, call);
    writeJson(res, {
      ok: true,
      voice_ref: voiceId,
      voice_id: voiceId,
      engine,
      sample_text: optionalString(fields, "sample_text", MAX_FIELD_CHARS),
    });
  };

  /** `POST /v1/jobs/abort {job_id}`: cancels the job's calls here and its worker render. */
  const abortRoute: Handler = async (req, res) => {
    const fields = await body(req);
    const jobId = optionalString(fields, "job_id", 256) || optionalString(fields, "id", 256);
    if (!jobId) throw new StoryForgeError("missing_job_id", "");
    const calls = tags.abort(
      jobId,
      new ConnectError(`StoryForge job ${jobId} was aborted`, Code.Canceled),
    );
    let renders = 0;
    for (const hook of options.abortHooks ?? []) renders += await hook(jobId);
    writeJson(res, { ok: true, job_id: jobId, aborted_calls: calls, aborted_renders: renders });
  };

  /**
   * `POST /v1/admin/vllm/reconfigure {gpus: [int]}`: no backend can be told to restart its LLM
   * server, so this is Cloud's soft error (HTTP 200 JSON; Cloud stores it as `llm_reconfigure`
   * and its UI shows the reload hint only for `ok: true`).
   */
  const reconfigureRoute: Handler = async (req) => {
    const fields = await body(req);
    const gpus = fields.gpus;
    if (
      !Array.isArray(gpus) ||
      gpus.length > 64 ||
      !gpus.every((g) => Number.isInteger(g) && g >= 0 && g < 1024)
    ) {
      throw new StoryForgeError("bad_field", "gpus must be a list of GPU indexes (0 to 1023)");
    }
    throw new StoryForgeError(
      "not_supported",
      `no connected backend declares LLM server reconfiguration (asked for GPUs ${gpus.join(",") || "none"}); ` +
        "configure the LLM backend's GPUs on its host",
    );
  };

  const handlers: Record<StoryForgeRouteId, Handler> = {
    StoryForge_Ping: async (_req, res) =>
      writeJson(res, { ok: true, service: "voxgate", ts: Math.floor(Date.now() / 1000) }),
    StoryForge_Metrics: metricsRoute,
    StoryForge_Engines: enginesRoute,
    StoryForge_VoiceClips: clipsRoute,
    StoryForge_VoiceClipFile: clipFileRoute,
    StoryForge_TrainVoice: trainRoute,
    StoryForge_Tts: speak,
    StoryForge_AnalyzeAudio: analyzeRoute,
    StoryForge_AudioAge: ageRoute,
    StoryForge_AudioGender: genderRoute,
    StoryForge_Llm: llmRoute,
    StoryForge_AbortJob: abortRoute,
    StoryForge_ReconfigureLlm: reconfigureRoute,
  };
  const matcher = createRouteMatcher(STORYFORGE_ROUTES, { basePath: base, headAsGet: true });

  return {
    routes: STORYFORGE_ROUTES.map((spec) => ({ ...spec, path: openApiTemplate(spec.path, base) })),
    route(req) {
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      if (base && !(path.startsWith(`${base}/`) || path === base)) return undefined;
      const found = matcher.match(req.method ?? "GET", path);
      if (found.kind === "match") {
        return route(found.spec.service === undefined, handlers[found.spec.doc.operationId]);
      }
      if (found.kind === "method-not-allowed") return notAllowed(found.allow.join(", "));
      // Below the base path, unknown paths are this surface's 404 (in FastAPI's shape).
      if (!base) return undefined;
      return route(false, async (_req, res) => writeJson(res, { detail: "Not Found" }, 404));
    },
  };
}

/**
 * The LLM path until a typed LLM service is on the gateway: a soft error naming the missing
 * capability (backends with FEATURE_GENERATE_TEXT).
 */
export function createUnavailableLlm(): LlmPort {
  return {
    async complete() {
      throw new StoryForgeError(
        "llm_unavailable",
        "this gateway has no LLM service (needs a backend with FEATURE_GENERATE_TEXT)",
      );
    },
  };
}

/** Empty or unknown content types are left to the analyzer to sniff; Spaces may say octet-stream. */
function wavOrSniffed(contentType: string): string {
  const media = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return media === "application/octet-stream" || media === "binary/octet-stream" ? "" : contentType;
}

/** The principal the Cloud job worker's typed calls run as (its own name, jobs and tts scopes). */
export const STORYFORGE_WORKER_PRINCIPAL: Principal = {
  name: "storyforge-worker",
  scopes: new Set(["jobs", "tts", "voices"]),
  tenant: "storyforge-worker",
};
