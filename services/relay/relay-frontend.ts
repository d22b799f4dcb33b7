import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  type ContextValues,
  createClient,
  createContextValues,
  type Transport,
} from "@connectrpc/connect";
import type { Logger } from "pino";
import { type NamedPrompt, PromptStoreService } from "../../gen/voxgate/v1/prompt_store_pb.js";
import { type SynthesizeSpeechRequestSchema, TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { VoiceService, VoiceType } from "../../gen/voxgate/v1/voice_pb.js";
import type { GateResult } from "../auth/request-gate.js";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import { kCallContext, kExpectedCodes } from "../gateway/call-context.js";
import type { HttpFrontend, HttpRoute } from "../gateway/http-frontend.js";
import { createRouteMatcher } from "../gateway/http-route-spec.js";
import type { BackendRegistry } from "../registry/index.js";
import { clipFacts } from "./relay-audio.js";
import { parseMultipart, readBody, readJsonObject } from "./relay-body.js";
import type { RelayDebugLog } from "./relay-debug-log.js";
import {
  badRequest,
  isRelayError,
  RelayError,
  toRelayError,
  writeRelayError,
} from "./relay-error.js";
import {
  encodingOf,
  kRelayLabelKeys,
  labelsOf,
  languageTag,
  optionalString,
  type RelayBody,
  requiredString,
  stringList,
} from "./relay-fields.js";
import { backendsDeclaring, type RelayCapability, refuseMode } from "./relay-modes.js";
import { RELAY_ROUTES, type RelayRouteId } from "./relay-routes.js";
import { connectedAgents, modelsLoaded, readyAgents, runPodStatus } from "./relay-status.js";

type RelayRouteSpec = (typeof RELAY_ROUTES)[number];

/** Options of {@link createRelayFrontend}. */
export interface RelayFrontendOptions {
  /** The gateway's in-process transport: every call goes through the typed services. */
  transport: Transport;
  /** The registry, read for status, debug and mode capabilities. */
  registry: BackendRegistry;
  /** Recent registry and relay events for the debug view. */
  debugLog: RelayDebugLog;
  /** Largest request body, in bytes (`VOXGATE_MAX_REQUEST_BYTES`). */
  maxRequestBytes: number;
  /** Deepest JSON nesting (`VOXGATE_MAX_JSON_DEPTH`). */
  maxJsonDepth: number;
  /** Deadline of relay calls, in ms (relay clients set none). */
  defaultTimeoutMs: number;
  /** Root logger; each call logs through a child with its request id. */
  log: Logger;
  /** When the gateway started (the relay's `uptime_seconds`). @default now */
  startedAt?: number;
}

/** Most prompts one relay listing returns (pages of 500 are read until then). */
export const kRelayMaxListedPrompts = 10_000;

type Handler = (call: RelayCall) => Promise<void>;

/** One relay request on its way through. */
interface RelayCall {
  req: NodeRequest;
  res: NodeResponse;
  /** Path parameter (`{name}`, `{voice_id}`), decoded. */
  param: string;
  /** Query parameters. */
  query: URLSearchParams;
  /** Options of every typed call this request makes. */
  callOptions: { signal: AbortSignal; timeoutMs: number; contextValues: ContextValues };
  /** Context of lookups whose NOT_FOUND (or malformed key) is an expected answer. */
  lookupContext: ContextValues;
  log: Logger;
}

/**
 * The Qwen3-TTS relay API (`decay256/qwen3-tts-server`, `contracts/relay-api.yaml` and the routes
 * its clients call) over voxgate's typed services, in process: same gate (`Authorization: Bearer`,
 * scopes tts/voices/admin), limits and logs as every other way in. Request and answer bodies are
 * the relay's; errors are `{"error": …, "code": …}` with the relay's statuses (503 when no backend
 * can serve, 502 when a backend failed). Clone prompts are addressed by name (unique per token).
 * Modes only some model servers offer (voice design, casting, …) answer 503 naming the capability
 * while no connected backend declares it.
 */
export function createRelayFrontend(options: RelayFrontendOptions): HttpFrontend {
  const { registry, log, debugLog } = options;
  const tts = createClient(TtsService, options.transport);
  const voices = createClient(VoiceService, options.transport);
  const prompts = createClient(PromptStoreService, options.transport);
  const startedAt = options.startedAt ?? Date.now();
  const maxBytes = options.maxRequestBytes;
  const jsonLimits = { maxBytes, maxDepth: options.maxJsonDepth };

  /** Speaks and answers raw audio with the relay's headers. */
  const speakRaw = async (
    call: RelayCall,
    request: MessageInitShape<typeof SynthesizeSpeechRequestSchema>,
    voiceId: string,
  ) => {
    const clip = await tts.synthesize(request, call.callOptions);
    const facts = await clipFacts(clip.data, clip.contentType);
    call.res.writeHead(200, {
      "content-type": clip.contentType.split(";")[0] ?? clip.contentType,
      "content-length": String(clip.data.byteLength),
      "x-duration-seconds": String(facts.durationSeconds),
      "x-sample-rate": String(facts.sampleRateHz),
      "x-voice-id": voiceId,
    });
    call.res.end(clip.data);
  };

  /** Speaks and answers JSON with base64 audio (what the relay's prompt routes returned). */
  const speakJson = async (
    call: RelayCall,
    request: MessageInitShape<typeof SynthesizeSpeechRequestSchema>,
    format: string,
  ) => {
    const clip = await tts.synthesize(request, call.callOptions);
    const facts = await clipFacts(clip.data, clip.contentType);
    writeJson(
      call.res,
      {
        audio: Buffer.from(clip.data).toString("base64"),
        format,
        sample_rate: facts.sampleRateHz,
        duration_s: facts.durationSeconds,
      },
      { "x-duration-seconds": String(facts.durationSeconds) },
    );
  };

  /** Every named prompt matching the filter, all pages (bounded). */
  const listAllPrompts = async (
    call: RelayCall,
    filter: { tags?: string[]; labels?: Record<string, string>; query?: string },
  ) => {
    const all: NamedPrompt[] = [];
    let pageToken = "";
    do {
      const page = await prompts.listNamedPrompts(
        { pageSize: 500, pageToken, ...filter },
        call.callOptions,
      );
      all.push(...page.prompts);
      pageToken = page.nextPageToken;
    } while (pageToken && all.length < kRelayMaxListedPrompts);
    return all.slice(0, kRelayMaxListedPrompts);
  };

  /** `POST /api/v1/voices/clone-prompt` body → CreateNamedPrompt. */
  const createPrompt = async (call: RelayCall, body: RelayBody, tagsPrefix: string[] = []) => {
    const name = requiredString(body, "name");
    // The yaml, the web backend and RunPod workers send `audio`; the relay's local server read
    // `ref_audio_base64`; both are taken.
    const audio = optionalString(body, "audio") ?? optionalString(body, "ref_audio_base64");
    if (!audio) throw badRequest("Missing 'audio' (base64 reference audio)");
    const referenceAudio = decodeBase64(audio, "audio");
    const created = await prompts.createNamedPrompt(
      {
        name,
        referenceAudio,
        referenceText: optionalString(body, "ref_text") ?? "",
        tags: [...tagsPrefix, ...stringList(body, "tags")],
        labels: labelsOf(body),
        language: languageTag(optionalString(body, "language")),
        // Re-creating a name overwrites it, as the relay's prompt store did.
        replace: true,
      },
      call.callOptions,
    );
    const prompt = created.prompt;
    if (!prompt) throw new ConnectError("CreateNamedPrompt returned no prompt", Code.Internal);
    debugLog.record("prompt_created", { prompt: prompt.name, digest: prompt.digest });
    return prompt;
  };

  /**
   * Speaks `text` with a voice made from `instruct` (TtsService.Synthesize with params.mode
   * voice_design, routed to backends that declare FEATURE_VOICE_DESIGN); 503 naming the
   * capability when none is connected. Answers the relay's JSON and the clip's bytes.
   */
  async function design(
    call: RelayCall,
    text: string,
    instruct: string,
    body: RelayBody,
    format: string,
  ): Promise<{ json: Record<string, unknown> & { duration_s: number }; wav: Uint8Array }> {
    if (backendsDeclaring(registry, "voice_design").length === 0) {
      throw refuseMode(registry, "voice_design");
    }
    const encoding = encodingOf(format);
    const request = {
      text,
      instructions: instruct,
      params: { mode: "voice_design" },
      language: languageTag(optionalString(body, "language")),
    };
    // One call: a designed voice is not repeatable, so the clip answered is the one a prompt is
    // made from (prompts need WAV; the callers check).
    const clip = await tts.synthesize({ ...request, encoding }, call.callOptions);
    const facts = await clipFacts(clip.data, clip.contentType);
    return {
      json: {
        audio: Buffer.from(clip.data).toString("base64"),
        format,
        sample_rate: facts.sampleRateHz,
        duration_s: facts.durationSeconds,
      },
      wav: clip.data,
    };
  }

  /** Makes a named prompt from a designed clip (create_prompt / create_prompts). */
  async function promptFromClip(call: RelayCall, wav: Uint8Array, fields: RelayBody) {
    return createPrompt(call, { ...fields, audio: Buffer.from(wav).toString("base64") });
  }

  const handlers: Record<RelayRouteId, Handler> = {
    // ── Status ───────────────────────────────────────────────────────────────────────────────
    async Relay_Status(call) {
      const runpod = await runPodStatus(registry, { signal: call.callOptions.signal });
      const ready = readyAgents(registry);
      const body: Record<string, unknown> = {
        relay: "ok",
        tunnel_connected: ready.length > 0,
        connected_clients: connectedAgents(registry).length,
        uptime_seconds: uptime(startedAt),
        runpod_configured: runpod.configured,
        runpod_available: runpod.available,
      };
      if (runpod.health) body.runpod_health = runpod.health;
      if (ready.length > 0) {
        body.local = {
          status: "ok",
          models_loaded: modelsLoaded(registry),
          prompts_count: await promptCount(call),
          engine_ready: true,
          backends: ready.map((b) => b.id),
        };
      }
      writeJson(call.res, body);
    },
    async Relay_TtsStatus(call) {
      const runpod = await runPodStatus(registry, { signal: call.callOptions.signal });
      const connected = readyAgents(registry).length > 0;
      const body: Record<string, unknown> = {
        status: "ok",
        tunnel_connected: connected,
        runpod_configured: runpod.configured,
        runpod_available: runpod.available,
        models_loaded: connected ? modelsLoaded(registry) : [],
        prompts_count: 0,
      };
      if (runpod.health) body.runpod_health = runpod.health;
      try {
        body.prompts_count = await promptCount(call);
      } catch (err) {
        body.local_error = toRelayError(err).message;
      }
      writeJson(call.res, body);
    },
    async Relay_Warmup(call) {
      await readJsonObject(call.req, call.res, jsonLimits);
      if (readyAgents(registry).length > 0) {
        writeJson(call.res, {
          status: "connected",
          message: "GPU tunnel is already connected",
        });
        return;
      }
      const runpod = await runPodStatus(registry, {
        warmUp: true,
        signal: call.callOptions.signal,
      });
      if (!runpod.configured) {
        throw new RelayError("RunPod is not configured — cannot warm up", 503, "unavailable");
      }
      if (runpod.failed) {
        const reason = runpod.health && "error" in runpod.health ? runpod.health.error : "";
        throw new RelayError(
          `Failed to submit warmup job to RunPod: ${reason}`,
          502,
          "backend_failed",
        );
      }
      if (!runpod.warmUpJob) {
        writeJson(call.res, {
          status: "noop",
          message: "Workers already ready/idle — no warmup needed",
          workers_ready: runpod.workersReady,
        });
        return;
      }
      debugLog.record("warmup_submitted", { job_id: runpod.warmUpJob });
      writeJson(call.res, { status: "warming", message: "RunPod worker requested" });
    },
    async Relay_Debug(call) {
      const backends = registry.list();
      const inFlight = backends.reduce((sum, b) => sum + b.inFlight, 0);
      const memory = process.memoryUsage();
      writeJson(call.res, {
        mem_rss_mb: Math.round((memory.rss / 1024 / 1024) * 10) / 10,
        mem_heap_used_mb: Math.round((memory.heapUsed / 1024 / 1024) * 10) / 10,
        tunnel_connected: readyAgents(registry).length > 0,
        pending_requests: inFlight,
        uptime_seconds: uptime(startedAt),
        backends: backends.map((b) => ({
          id: b.id,
          kind: kindName(b.kind),
          state: stateName(b.state),
          in_flight: b.inFlight,
          slots: b.capabilities.slots,
          address: b.address,
          calls_total: b.callsTotal,
          failures_total: b.failuresTotal,
          last_error: b.lastError,
        })),
        recent_events: debugLog.recent(50),
      });
    },

    // ── Clone prompts by name ────────────────────────────────────────────────────────────────
    async Relay_CreateClonePrompt(call) {
      const body = await readJsonObject(call.req, call.res, jsonLimits);
      const prompt = await createPrompt(call, body);
      writeJson(call.res, {
        name: prompt.name,
        status: "created",
        prompt_id: prompt.name,
        gcs_path: prompt.storeKey,
        metadata: relayPrompt(prompt),
      });
    },
    async Relay_CreateClonePrompts(call) {
      const body = await readJsonObject(call.req, call.res, jsonLimits);
      const items = body.items;
      if (!Array.isArray(items) || items.length === 0) throw badRequest("Missing 'items' array");
      if (items.length > 100) throw badRequest(`${items.length} items; the limit is 100`);
      await answerBatch(call, items, "prompt_", "created", async (fields, name) => {
        const prompt = await createPrompt(call, { ...fields, name });
        return { gcs_path: prompt.storeKey };
      });
    },
    async Relay_ListPrompts(call) {
      const all = await listAllPrompts(call, { tags: tagsOf(call.query.get("tags")) });
      writeJson(call.res, { prompts: all.map(relayPrompt), count: all.length });
    },
    async Relay_SearchPrompts(call) {
      const labels: Record<string, string> = {};
      for (const key of ["character", "emotion", "intensity"]) {
        const value = call.query.get(key);
        if (value) labels[key] = value;
      }
      const all = await listAllPrompts(call, {
        tags: tagsOf(call.query.get("tags")),
        labels,
        query: call.query.get("q") ?? "",
      });
      writeJson(call.res, { prompts: all.map(relayPrompt), count: all.length });
    },
    async Relay_GetPrompt(call) {
      const found = await notFoundAs(
        prompts.getNamedPrompt({ name: call.param }, call.callOptions),
        `Prompt '${call.param}' not found`,
      );
      if (!found.prompt) throw new ConnectError("GetNamedPrompt returned nothing", Code.Internal);
      writeJson(call.res, relayPrompt(found.prompt));
    },
    async Relay_DeletePrompt(call) {
      await notFoundAs(
        prompts.deleteNamedPrompt({ name: call.param }, call.callOptions),
        `Prompt '${call.param}' not found`,
      );
      debugLog.record("prompt_deleted", { prompt: call.param });
      writeJson(call.res, { name: call.param, status: "deleted" });
    },
    async Relay_ListCharacters(call) {
      const characters = charactersOf(await listAllPrompts(call, {}));
      writeJson(call.res, { characters, count: characters.length });
    },
    async Relay_SpeakWithPrompt(call) {
      const body = await readJsonObject(call.req, call.res, jsonLimits);
      const text = optionalString(body, "text");
      const promptName = optionalString(body, "voice_prompt");
      if (!text || !promptName) throw badRequest("Missing 'text' and 'voice_prompt'");
      const format = optionalString(body, "format") ?? "wav";
      const request = {
        text,
        promptName,
        language: languageTag(optionalString(body, "language")),
        encoding: encodingOf(format),
      };
      debugLog.record("clone_synth_start", { prompt: promptName, text_chars: text.length });
      const speak = wantsRawAudio(call.req)
        ? speakRaw(call, request, promptName)
        : speakJson(call, request, format);
      await notFoundAs(speak, `Clone prompt '${promptName}' not found`);
    },

    // ── Voices (the relay's /api/v1/tts/* routes, used by client/tts_client.py) ──────────────
    async Relay_ListVoices(call) {
      const all: Record<string, unknown>[] = [];
      let pageToken = "";
      do {
        const page = await voices.listVoices({ pageSize: 500, pageToken }, call.callOptions);
        for (const v of page.voices) {
          all.push({
            voice_id: v.id,
            name: v.name,
            type: v.type === VoiceType.CLONED ? "cloned" : "preset",
            description: v.description || null,
            engine: v.engine,
            languages: v.languages,
          });
        }
        pageToken = page.nextPageToken;
      } while (pageToken && all.length < kRelayMaxListedPrompts);
      writeJson(call.res, { voices: all });
    },
    async Relay_Synthesize(call) {
      const body = await readJsonObject(call.req, call.res, jsonLimits);
      const text = optionalString(body, "text");
      if (!text) throw badRequest("Missing 'text' field");
      if (body.ref_audio !== undefined || body.ref_audio_b64 !== undefined) {
        throw refuseMode(registry, "voice_clone_oneshot");
      }
      const key = optionalString(body, "voice_name") || optionalString(body, "voice_id");
      if (!key) throw badRequest("Missing 'voice_id' or 'voice_name' field");
      const format = optionalString(body, "format") ?? "mp3";
      const selector = await resolveVoice(call, key);
      await speakRaw(
        call,
        {
          text,
          ...selector,
          instructions: optionalString(body, "instructions") ?? "",
          language: languageTag(optionalString(body, "language")),
          encoding: encodingOf(format),
        },
        selector.voice || key,
      );
    },
    async Relay_CloneVoice(call) {
      const contentType = String(call.req.headers["content-type"] ?? "");
      let name: string | undefined;
      let audio: Uint8Array | undefined;
      if (/^multipart\/form-data/i.test(contentType)) {
        const parts = parseMultipart(await readBody(call.req, call.res, maxBytes), contentType);
        name = parts.find((p) => p.name === "voice_name")?.data.toString("utf8");
        audio = parts.find((p) => p.name === "reference_audio")?.data;
      } else {
        const body = await readJsonObject(call.req, call.res, jsonLimits);
        name = optionalString(body, "voice_name");
        const b64 = optionalString(body, "reference_audio");
        audio = b64 ? decodeBase64(b64, "reference_audio") : undefined;
      }
      if (!name || !audio) throw badRequest("Missing 'voice_name' or 'reference_audio'");
      const created = await voices.createVoice({ name, referenceAudio: audio }, call.callOptions);
      const voice = created.voice;
      if (!voice) throw new ConnectError("CreateVoice returned no voice", Code.Internal);
      debugLog.record("voice_cloned", { voice: voice.id });
      writeJson(call.res, { voice_id: voice.id, name: voice.name, type: "cloned" });
    },
    async Relay_DeleteVoice(call) {
      await notFoundAs(
        voices.deleteVoice({ voiceId: call.param }, call.callOptions),
        `Voice not found: ${call.param}`,
      );
      writeJson(call.res, { deleted: call.param });
    },

    // ── Modes of the Qwen3 model server ──────────────────────────────────────────────────────
    async Relay_DesignVoice(call) {
      const body = await readJsonObject(call.req, call.res, jsonLimits);
      const text = optionalString(body, "text");
      const instruct = optionalString(body, "instruct");
      if (!text || !instruct) throw badRequest("Missing 'text' and 'instruct'");
      const createPrompt = body.create_prompt === true;
      const promptName = optionalString(body, "prompt_name");
      if (createPrompt && !promptName) {
        throw badRequest("'prompt_name' is required when create_prompt is true");
      }
      const format = optionalString(body, "format") ?? "wav";
      if (createPrompt && format !== "wav") {
        throw badRequest("create_prompt needs format 'wav' (the prompt is made from the clip)");
      }
      const clip = await design(call, text, instruct, body, format);
      const answer: Record<string, unknown> = { ...clip.json };
      if (createPrompt && promptName) {
        const prompt = await promptFromClip(call, clip.wav, {
          name: promptName,
          ref_text: text,
          instruct,
          tags: stringList(body, "tags"),
        });
        answer.prompt_created = true;
        answer.prompt_name = prompt.name;
        answer.gcs_path = prompt.storeKey;
      }
      writeJson(call.res, answer, {
        "x-duration-seconds": String(clip.json.duration_s),
      });
    },
    async Relay_TtsDesign(call) {
      const body = await readJsonObject(call.req, call.res, jsonLimits);
      const text = optionalString(body, "text");
      if (!text) throw badRequest("Missing 'text' field");
      const description = optionalString(body, "description");
      if (!description) throw badRequest("Missing 'description' field");
      const format = optionalString(body, "format") ?? "wav";
      const clip = await design(call, text, description, body, format);
      writeJson(call.res, { ...clip.json, description });
    },
    async Relay_DesignVoices(call) {
      const body = await readJsonObject(call.req, call.res, jsonLimits);
      const items = body.items;
      if (!Array.isArray(items) || items.length === 0) throw badRequest("Missing 'items' array");
      if (items.length > 100) throw badRequest(`${items.length} items; the limit is 100`);
      if (backendsDeclaring(registry, "voice_design").length === 0) {
        throw refuseMode(registry, "voice_design_batch");
      }
      const format = optionalString(body, "format") ?? "wav";
      const createPrompts = body.create_prompts === true;
      if (createPrompts && format !== "wav") {
        throw badRequest("create_prompts needs format 'wav' (prompts are made from the clips)");
      }
      // The yaml and the web backend say tags_prefix; the relay's GPU server read
      // prompt_tags_prefix.
      const prefix = [
        ...stringList(body, "tags_prefix"),
        ...stringList(body, "prompt_tags_prefix"),
      ];
      await answerBatch(call, items, "batch_", "ok", async (fields, name) => {
        const text = requiredString(fields, "text");
        const instruct = requiredString(fields, "instruct");
        const clip = await design(call, text, instruct, fields, format);
        const result: Record<string, unknown> = { ...clip.json };
        if (createPrompts) {
          try {
            const prompt = await promptFromClip(call, clip.wav, {
              ...fields,
              name,
              ref_text: optionalString(fields, "ref_text") ?? text,
              tags: [...prefix, ...stringList(fields, "tags")],
            });
            result.prompt_created = true;
            result.prompt_tags = prompt.tags;
          } catch (err) {
            if (call.callOptions.signal.aborted) throw err;
            result.prompt_created = false;
            result.prompt_error = toRelayError(err).message;
          }
        }
        return result;
      });
    },
    Relay_CastVoices: mode("POST", "voice_cast", []),
    Relay_ListEmotions: mode("GET", "emotion_presets", []),
    Relay_NormalizeAudio: mode("POST", "audio_normalize", []),

    // ── Voice packages: a file format of the relay's GPU server that voxgate does not have ────
    Relay_ExportVoicePackage: unsupported,
    Relay_ImportVoicePackage: unsupported,
    Relay_SyncVoicePackages: unsupported,
  };

  /**
   * Runs `each` for every batch item (named by its `name`, else `<defaultPrefix><index>`) and
   * answers the relay's summary: `okStatus` with what `each` returned, or `error` with the
   * failure's message. One bad item does not sink the batch (as in the relay); a gone caller does.
   */
  async function answerBatch(
    call: RelayCall,
    items: readonly unknown[],
    defaultPrefix: string,
    okStatus: string,
    each: (fields: RelayBody, name: string) => Promise<Record<string, unknown>>,
  ): Promise<void> {
    const results: Record<string, unknown>[] = [];
    for (const [i, item] of items.entries()) {
      const fields = (typeof item === "object" && item !== null ? item : {}) as RelayBody;
      const name = optionalString(fields, "name") ?? `${defaultPrefix}${i}`;
      try {
        results.push({ name, status: okStatus, ...(await each(fields, name)) });
      } catch (err) {
        if (call.callOptions.signal.aborted) throw err;
        results.push({ name, status: "error", error: toRelayError(err).message });
      }
    }
    writeJson(call.res, {
      results,
      total: results.length,
      succeeded: results.filter((r) => r.status === okStatus).length,
    });
  }

  /** A mode route's handler: checks the body's required fields, then refuses naming the capability. */
  function mode(method: string, capability: RelayCapability, required: readonly string[]): Handler {
    return async (call) => {
      if (method === "POST") {
        const body = await readJsonObject(call.req, call.res, jsonLimits);
        const missing = required.filter((key) => body[key] === undefined || body[key] === "");
        if (missing.length > 0) {
          throw badRequest(`Missing ${missing.map((k) => `'${k}'`).join(" and ")}`);
        }
      }
      throw refuseMode(registry, capability);
    };
  }

  async function unsupported(): Promise<void> {
    throw new RelayError(
      "voice packages (.voicepkg.zip) are not served by voxgate: cloned voices and named " +
        "prompts live in its own store (see GET /api/v1/voices/prompts)",
      501,
      "unimplemented",
    );
  }

  /**
   * The synthesis selector for a relay voice key: a voice id (cloned or preset), else one of the
   * caller's prompt names, else the name of a cloned voice the caller sees.
   * @throws RelayError 404 when it is none of these.
   */
  async function resolveVoice(
    call: RelayCall,
    key: string,
  ): Promise<{ voice: string; promptName: string }> {
    // NOT_FOUND is an expected answer of these lookups, not a failed call.
    const lookup = { ...call.callOptions, contextValues: call.lookupContext };
    try {
      await voices.getVoice({ voiceId: key }, lookup);
      return { voice: key, promptName: "" };
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (code !== Code.NotFound && code !== Code.InvalidArgument) throw err;
    }
    try {
      await prompts.getNamedPrompt({ name: key }, lookup);
      return { voice: "", promptName: key };
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (code !== Code.NotFound && code !== Code.InvalidArgument) throw err;
    }
    // The relay's GPU server looked voices up by id or name: a cloned voice of that name.
    let pageToken = "";
    do {
      const page = await voices.listVoices(
        { type: VoiceType.CLONED, pageSize: 500, pageToken },
        call.callOptions,
      );
      const named = page.voices.find((v) => v.name === key);
      if (named) return { voice: named.id, promptName: "" };
      pageToken = page.nextPageToken;
    } while (pageToken);
    throw new RelayError(`Voice not found: ${key}`, 404, "not_found");
  }

  async function promptCount(call: RelayCall): Promise<number> {
    return (await listAllPrompts(call, {})).length;
  }

  const contextValues = (gate: GateResult, callLog: Logger): ContextValues =>
    createContextValues().set(kCallContext, {
      requestId: gate.requestId,
      principal: gate.principal,
      log: callLog,
    });

  const toRoute = (spec: RelayRouteSpec, param: string, query: URLSearchParams): HttpRoute => ({
    service: spec.service,
    writeError: (req, res, error) => writeRelayError(req, res, toRelayError(error)),
    serve(req, res, gate) {
      const callLog = log.child({ requestId: gate.requestId, component: "relay" });
      const aborter = new AbortController();
      res.once("close", () => {
        if (!res.writableFinished) {
          aborter.abort(new ConnectError("the client closed the connection", Code.Canceled));
        }
      });
      const call: RelayCall = {
        req,
        res,
        param,
        query,
        callOptions: {
          signal: aborter.signal,
          timeoutMs: options.defaultTimeoutMs,
          contextValues: contextValues(gate, callLog),
        },
        lookupContext: contextValues(gate, callLog).set(kExpectedCodes, [
          Code.NotFound,
          Code.InvalidArgument,
        ]),
        log: callLog,
      };
      handlers[spec.doc.operationId](call).catch((err: unknown) => {
        const error = toRelayError(err);
        if (error.status >= 500 && !isRelayError(err)) {
          callLog.error({ err, path: pathOf(req) }, "relay call failed");
        }
        if (error.status >= 500) {
          debugLog.record("call_failed", { path: pathOf(req), status: error.status });
        }
        if (!res.headersSent) writeRelayError(req, res, error);
      });
    },
  });

  const matcher = createRouteMatcher(RELAY_ROUTES);
  return {
    routes: RELAY_ROUTES,
    route(req) {
      const path = pathOf(req);
      if (!path.startsWith("/api/v1/")) return undefined;
      const found = matcher.match(req.method ?? "GET", path);
      if (found.kind === "match") {
        // One path parameter at most: `{name}` or `{voice_id}`.
        let param = "";
        try {
          param = decodeURIComponent(Object.values(found.params)[0] ?? "");
        } catch {
          return errorRoute(badRequest("the path is not valid percent-encoding"));
        }
        return toRoute(found.spec, param, queryOf(req));
      }
      if (found.kind === "method-not-allowed") {
        return errorRoute(
          new RelayError(
            `${req.method} is not allowed here; use ${found.allow.join(", ")}`,
            405,
            "method_not_allowed",
          ),
          { allow: found.allow.join(", ") },
        );
      }
      // Other /api/v1/ paths may be voxgate's own REST bindings: not this frontend's.
      return undefined;
    },
  };
}

/** A route that answers an error without a token check (404/405 and bad paths reveal nothing). */
function errorRoute(error: RelayError, headers: Record<string, string> = {}): HttpRoute {
  return {
    service: undefined,
    writeError: (req, res, e) => writeRelayError(req, res, toRelayError(e)),
    serve(req, res) {
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      writeRelayError(req, res, error);
    },
  };
}

/** A named prompt as the relay listed it: its metadata dict, plus where voxgate keeps it. */
export function relayPrompt(p: NamedPrompt): Record<string, unknown> {
  const labels: Record<string, unknown> = {};
  for (const key of kRelayLabelKeys) {
    const value = p.labels[key];
    if (value) labels[key] = value;
  }
  return {
    name: p.name,
    tags: p.tags,
    ref_text: p.referenceText || null,
    created_at: p.createTime ? timestampDate(p.createTime).toISOString() : null,
    ref_audio_duration_s:
      p.referenceDurationMs > 0n ? Math.round(Number(p.referenceDurationMs) / 10) / 100 : null,
    // The relay's Qwen3 prompts were ICL prompts when a transcript was given, x-vector only else.
    x_vector_only_mode: !p.referenceText,
    icl_mode: Boolean(p.referenceText),
    ...labels,
    prompt_id: p.name,
    gcs_path: p.storeKey,
    digest: p.digest,
    model: p.model?.family ?? "",
    model_size: p.model?.size ?? "",
    engine: p.engine,
    size_bytes: Number(p.sizeBytes),
  };
}

/** The relay's character listing, from the `character` label of named prompts. */
export function charactersOf(all: readonly NamedPrompt[]): Record<string, unknown>[] {
  const byCharacter = new Map<
    string,
    { character: string; prompt_count: number; emotions: Set<string>; modes: Set<string> }
  >();
  for (const p of all) {
    const character = p.labels.character;
    if (!character) continue;
    const key = character.toLowerCase();
    let entry = byCharacter.get(key);
    if (!entry) {
      entry = { character, prompt_count: 0, emotions: new Set(), modes: new Set() };
      byCharacter.set(key, entry);
    }
    entry.prompt_count++;
    const emotion = p.labels.emotion;
    if (emotion) entry.emotions.add(emotion);
    else for (const tag of p.tags) if (tag !== character) entry.modes.add(tag);
  }
  return [...byCharacter.values()]
    .sort((a, b) => a.character.localeCompare(b.character))
    .map((e) => ({
      character: e.character,
      prompt_count: e.prompt_count,
      emotions: [...e.emotions].sort(),
      modes: [...e.modes].sort(),
    }));
}

/** Answers NOT_FOUND with the relay's own message. */
async function notFoundAs<T>(work: Promise<T>, message: string): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (ConnectError.from(err).code === Code.NotFound) {
      throw new RelayError(message, 404, "not_found");
    }
    throw err;
  }
}

/** Whether the caller asked for raw audio (`Accept: audio/*`) instead of the relay's JSON. */
function wantsRawAudio(req: NodeRequest): boolean {
  return /(^|,)\s*audio\//i.test(String(req.headers.accept ?? ""));
}

function decodeBase64(text: string, field: string): Uint8Array {
  const clean = text.replace(/^data:[^,]*,/, "").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) {
    throw badRequest(`'${field}' is not base64`);
  }
  return Buffer.from(clean, "base64");
}

function tagsOf(value: string | null): string[] {
  return (value ?? "")
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
}

function uptime(startedAt: number): number {
  return Math.round((Date.now() - startedAt) / 100) / 10;
}

function kindName(kind: number): string {
  return ["unspecified", "agent", "serverless", "in_process"][kind] ?? "unknown";
}

function stateName(state: number): string {
  return (
    ["unspecified", "pending", "ready", "unhealthy", "draining", "removed"][state] ?? "unknown"
  );
}

function writeJson(res: NodeResponse, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(200, {
    ...headers,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
  });
  res.end(body);
}

function pathOf(req: NodeRequest): string {
  return (req.url ?? "/").split("?")[0] ?? "/";
}

function queryOf(req: NodeRequest): URLSearchParams {
  const url = req.url ?? "/";
  const at = url.indexOf("?");
  return new URLSearchParams(at < 0 ? "" : url.slice(at + 1));
}
