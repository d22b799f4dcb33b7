import { once } from "node:events";
import { type Any, anyUnpack } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  type ContextValues,
  createClient,
  createContextValues,
  type Transport,
} from "@connectrpc/connect";
import type { Logger } from "pino";
import { WordTimingsSchema } from "../../gen/voxgate/v1/audio_pb.js";
import { VoiceGender } from "../../gen/voxgate/v1/capabilities_pb.js";
import { LlmService } from "../../gen/voxgate/v1/llm_pb.js";
import { PromptStoreService } from "../../gen/voxgate/v1/prompt_store_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { type Voice, VoiceService, VoiceType } from "../../gen/voxgate/v1/voice_pb.js";
import type { GateResult } from "../auth/request-gate.js";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import { kCallContext, kExpectedCodes } from "../gateway/call-context.js";
import type { HttpFrontend, HttpRoute } from "../gateway/http-frontend.js";
import { createRouteMatcher } from "../gateway/http-route-spec.js";
import { isJsonLimitError, type JsonLimits, readJsonText } from "../input-limits/json-limits.js";
import type { BackendRegistry } from "../registry/index.js";
import { isClonedVoiceId } from "../voices/voice-id.js";
import {
  completionId,
  parseChatRequest,
  textModelsOf,
  unknownTextModel,
} from "./chat-completions.js";
import { listSpeechModels, speakingEngines, speechModelCatalog } from "./model-catalog.js";
import {
  DEFAULT_VOICE_ALIASES,
  type ModelAliases,
  resolveVoiceAlias,
  type VoiceAliases,
} from "./openai-aliases.js";
import {
  invalidRequest,
  isOpenAiError,
  OpenAiError,
  toOpenAiError,
  writeOpenAiError,
} from "./openai-error.js";
import { OPENAI_ROUTES, type OpenAiRouteId } from "./openai-openapi.js";
import { OPENAI_VOICES, parseSpeechRequest, type SpeechCall } from "./speech-request.js";

/** Response header with the sample rate of `pcm` audio, in Hz. */
export const kSampleRateHeader = "x-voxgate-sample-rate";
/**
 * Request header with the call's deadline, in ms (as on the REST routes); OpenAI requests carry
 * no deadline of their own.
 */
export const kTimeoutHeader = "x-voxgate-timeout-ms";

/** Options of {@link createOpenAiFrontend}. */
export interface OpenAiFrontendOptions {
  /** The gateway's in-process transport: every call goes through TtsService and VoiceService. */
  transport: Transport;
  /** The registry, read to list and resolve models (engine ids and model families). */
  registry: BackendRegistry;
  /** Largest JSON request body, in bytes. */
  maxRequestBytes: number;
  /** Deepest JSON nesting of a request body (setting maxJsonDepth). */
  maxJsonDepth: number;
  /** Deadline of calls that set none with {@link kTimeoutHeader}, in ms. */
  defaultTimeoutMs: number;
  /** Longest deadline a caller may set with {@link kTimeoutHeader}, in ms; longer ones are cut. */
  maxTimeoutMs: number;
  /** Root logger; each call logs through a child with its request id. */
  log: Logger;
  /**
   * Voice aliases, merged over {@link DEFAULT_VOICE_ALIASES} name by name (a name given here
   * replaces the built-in entry of that name). @default {}
   */
  voiceAliases?: VoiceAliases;
  /** Model aliases: `model` names that stand for engine/model routing criteria. @default {} */
  modelAliases?: ModelAliases;
  /**
   * Whether `GET /v1/audio/voices` and `GET /v1/audio/models` answer requests without an
   * `Authorization` header (Open WebUI fetches them without one). Such requests see preset voices
   * only; a request with a token is checked as always. @default setting openaiPublicVoiceList
   */
  publicVoiceList?: boolean;
}

const LIST_PAGE_SIZE = 500;
/**
 * Most voices one `GET /v1/audio/voices` answer lists; `has_more`/`next_page` page on. Without a
 * cap, agents listing 20,000 presets made it one 4.8 MB answer.
 */
export const MAX_VOICES_PER_ANSWER = 1000;
const GENDERS: Record<VoiceGender, string> = {
  [VoiceGender.UNSPECIFIED]: "",
  [VoiceGender.FEMALE]: "female",
  [VoiceGender.MALE]: "male",
  [VoiceGender.NEUTRAL]: "neutral",
};

/**
 * The OpenAI-compatible API, served on the public port next to Connect:
 * - `POST /v1/audio/speech` (scope tts) speaks through TtsService.StreamSynthesize: raw audio as
 *   it is produced (`stream_format: "audio"`), SSE `speech.audio.delta` events with base64
 *   audio and a final `speech.audio.done` (`stream_format: "sse"`), or one whole file with
 *   Content-Length (`"stream": false`, through TtsService.Synthesize); `voice` may be an alias
 *   (OpenAI's names, with a built-in table for espeak-ng) and `model` a model alias;
 * - `GET /v1/audio/voices` (scope voices) lists the voice aliases, then VoiceService voices, up to
 *   1000 per answer (`?limit=`, `?after=` with `has_more`/`next_page` for more), in the shape
 *   Open WebUI reads (`voices: [{ id, name }]`); with `publicVoiceList`, also without a token;
 * - `POST /v1/chat/completions` (scope tts) runs a language model through LlmService, whole or
 *   streamed as SSE `chat.completion.chunk` events; the client leaving cancels the backend call;
 * - `GET /v1/models` and `GET /v1/models/{id}` (scope tts) list the speech and language models
 *   backends offer; `GET /v1/audio/models` (scope tts) only the speech models, also as `models`.
 * Errors are OpenAI error objects. A failure after audio left cannot change the status any more:
 * an audio stream is then cut (the client sees a broken transfer, never a short file that looks
 * whole) and an SSE stream ends with an `error` event.
 */
export function createOpenAiFrontend(options: OpenAiFrontendOptions): HttpFrontend {
  const { transport, registry, log } = options;
  const voiceAliases: VoiceAliases = { ...DEFAULT_VOICE_ALIASES, ...options.voiceAliases };
  const modelAliases: ModelAliases = options.modelAliases ?? {};
  const modelAliasNames = Object.keys(modelAliases);
  const tts = createClient(TtsService, transport);
  const llm = createClient(LlmService, transport);
  const voices = createClient(VoiceService, transport);
  const prompts = createClient(PromptStoreService, transport);

  const contextValues = (gate: GateResult): ContextValues =>
    createContextValues().set(kCallContext, {
      requestId: gate.requestId,
      principal: gate.principal,
      log: log.child({ requestId: gate.requestId }),
      ...(gate.clientAddress ? { clientAddress: gate.clientAddress } : {}),
    });

  const route = (
    service: string | undefined,
    serve: (req: NodeRequest, res: NodeResponse, gate: GateResult) => Promise<void>,
  ): HttpRoute => ({
    service,
    writeError: (req, res, error) => writeOpenAiError(req, res, toOpenAiError(error)),
    serve(req, res, gate) {
      serve(req, res, gate).catch((err: unknown) => {
        const error = toOpenAiError(err);
        if (error.status >= 500 && !isOpenAiError(err)) {
          log.child({ requestId: gate.requestId }).error({ err }, "OpenAI-compatible call failed");
        }
        // Past the status line (an answered 413, a cut stream) there is nothing left to say.
        if (!res.headersSent) writeOpenAiError(req, res, error);
      });
    },
  });

  const methodNotAllowed = (allowed: string): HttpRoute => ({
    service: undefined,
    writeError: (req, res, error) => writeOpenAiError(req, res, toOpenAiError(error)),
    serve(req, res) {
      res.setHeader("allow", allowed);
      writeOpenAiError(
        req,
        res,
        new OpenAiError(
          `${req.method} is not allowed here; use ${allowed}`,
          405,
          null,
          "method_not_allowed",
        ),
      );
    },
  });

  /** `POST /v1/audio/speech`. */
  async function speech(req: NodeRequest, res: NodeResponse, gate: GateResult): Promise<void> {
    const body = await readJsonBody(req, res, {
      maxBytes: options.maxRequestBytes,
      maxDepth: options.maxJsonDepth,
    });
    const backends = registry.list();
    const call = parseSpeechRequest(body, speechModelCatalog(backends), { modelAliases });
    const aborter = abortOnClose(res);
    const callOptions = {
      signal: aborter.signal,
      timeoutMs: timeoutOf(req, options),
      contextValues: contextValues(gate),
    };
    const lookupOptions = {
      ...callOptions,
      // NOT_FOUND is the usual answer (alloy, nova, … are rarely prompt names), not a failed call.
      contextValues: contextValues(gate).set(kExpectedCodes, [Code.NotFound]),
    };
    const voice = call.request.voice ?? "";
    // A voice that is one of the caller's prompt names speaks with that prompt, as on every
    // other protocol (prompt_name); a voice id or preset of that name comes first.
    if (voice && !isClonedVoiceId(voice) && !presetIds(call).has(voice)) {
      if (await isPromptName(voice, lookupOptions)) {
        call.request.voice = "";
        call.request.promptName = voice;
      } else {
        // An alias resolves from the table alone: no lookup, so no NOT_FOUND to log.
        const aliased = resolveVoiceAlias(voiceAliases, voice, {
          engine: call.request.engine ?? "",
          family: call.request.model ?? "",
          engines: speakingEngines(backends),
        });
        if (aliased !== undefined) {
          call.request.voice = aliased;
        } else if (OPENAI_VOICES.has(voice)) {
          // An OpenAI name the table leaves out speaks with the engine's default voice.
          call.request.voice = "";
        }
      }
    }
    if (call.whole) {
      const { response, header } = await wholeClip(call, callOptions);
      const headers: Record<string, string> = { "cache-control": "no-store" };
      for (const name of ["x-voxgate-backend", "x-voxgate-attempts"]) {
        const value = header?.get(name);
        if (value) headers[name] = value;
      }
      const rate = /;\s*rate=(\d+)/.exec(response.contentType)?.[1];
      if (call.responseFormat === "pcm" && rate) headers[kSampleRateHeader] = rate;
      res.writeHead(200, {
        ...headers,
        "content-type": response.contentType,
        "content-length": String(response.data.byteLength),
      });
      res.end(response.data);
      return;
    }
    let responseHeader: Headers | undefined;
    const chunks = tts.streamSynthesize(call.request, {
      ...callOptions,
      onHeader: (header) => {
        responseHeader = header;
      },
    });
    await sendSpeech(res, call, chunks, () => responseHeader, aborter.signal);
  }

  /**
   * Preset voice ids of the connected engines the call may go to (the echo engine's preset "echo"
   * is no preset of a call routed to espeak-ng, where "echo" stays an alias).
   */
  function presetIds(call: SpeechCall): Set<string> {
    const engine = call.request.engine ?? "";
    const family = call.request.model ?? "";
    return new Set(
      registry
        .list()
        .flatMap((b) =>
          b.capabilities.engines
            .filter(
              (e) =>
                (engine === "" || e.id === engine) && (family === "" || e.model?.family === family),
            )
            .flatMap((e) => e.voices.map((v) => v.id)),
        ),
    );
  }

  /** Whether `name` is one of the caller's prompt names. */
  async function isPromptName(
    name: string,
    callOptions: { signal: AbortSignal; timeoutMs: number; contextValues: ContextValues },
  ): Promise<boolean> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) return false;
    try {
      await prompts.getNamedPrompt({ name }, callOptions);
      return true;
    } catch (err) {
      if (ConnectError.from(err).code === Code.NotFound) return false;
      throw err;
    }
  }

  /** Synthesizes the whole clip at once (`"stream": false`): exact container sizes. */
  async function wholeClip(
    call: SpeechCall,
    callOptions: { signal: AbortSignal; timeoutMs: number; contextValues: ContextValues },
  ) {
    let header: Headers | undefined;
    const response = await tts.synthesize(call.request, {
      ...callOptions,
      onHeader: (h) => {
        header = h;
      },
    });
    return { response, header };
  }

  /**
   * `GET /v1/audio/voices`: ListVoices, at most {@link MAX_VOICES_PER_ANSWER} voices per answer
   * (`?limit=` asks for fewer); `has_more` and `next_page` (pass it back as `?after=`) page on.
   */
  async function listVoices(req: NodeRequest, res: NodeResponse, gate: GateResult): Promise<void> {
    const aborter = abortOnClose(res);
    const callOptions = {
      signal: aborter.signal,
      timeoutMs: timeoutOf(req, options),
      contextValues: contextValues(gate),
    };
    const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
    const limitText = query.get("limit");
    if (limitText !== null && !/^[1-9]\d{0,5}$/.test(limitText)) {
      throw invalidRequest(
        `limit must be a whole number from 1, got "${limitText.slice(0, 32)}"`,
        "limit",
      );
    }
    const limit = Math.min(Number(limitText ?? MAX_VOICES_PER_ANSWER), MAX_VOICES_PER_ANSWER);
    const all: Voice[] = [];
    let pageToken = query.get("after") ?? "";
    const firstPage = pageToken === "";
    // The aliases come first, on the first page: what OpenAI-minded tools offer in their lists.
    // Only those a connected engine can speak (a table entry for espeak-ng means nothing to a
    // model server), and never one a preset of the same name hides (the preset speaks).
    const engines = speakingEngines(registry.list());
    const speakable = firstPage
      ? Object.entries(voiceAliases)
          .filter(
            ([, target]) =>
              typeof target === "string" ||
              [...engines].some(
                ([engine, family]) =>
                  Object.hasOwn(target, engine) || (family !== "" && Object.hasOwn(target, family)),
              ),
          )
          .map(([name]) => name)
          // At least one place stays for the voices, so paging goes on.
          .slice(0, limit - 1)
      : [];
    // Without a token (publicVoiceList) only presets are listed: no tenant's cloned voices.
    const type = gate.principal ? VoiceType.UNSPECIFIED : VoiceType.PRESET;
    // The aliases share the answer's limit with the voices.
    const voiceLimit = limit - speakable.length;
    do {
      const pageSize = Math.min(LIST_PAGE_SIZE, voiceLimit - all.length);
      const page = await voices.listVoices({ pageSize, pageToken, type }, callOptions);
      all.push(...page.voices);
      pageToken = page.nextPageToken;
    } while (pageToken && all.length < voiceLimit);
    const listedIds = new Set(all.map((voice) => voice.id));
    const aliases = speakable
      .filter((name) => !listedIds.has(name))
      .map((name) => ({ id: name, name, type: "alias" }));
    writeJson(res, {
      voices: [
        ...aliases,
        ...all.map((voice) => ({
          id: voice.id,
          name: voice.name,
          type: voice.type === VoiceType.CLONED ? "cloned" : "preset",
          engine: voice.engine,
          ...(voice.model ? { model: voice.model.family } : {}),
          languages: voice.languages,
          ...(GENDERS[voice.gender] ? { gender: GENDERS[voice.gender] } : {}),
        })),
      ],
      has_more: pageToken !== "",
      ...(pageToken ? { next_page: pageToken } : {}),
    });
  }

  /** `POST /v1/chat/completions`. */
  async function chat(req: NodeRequest, res: NodeResponse, gate: GateResult): Promise<void> {
    const body = await readJsonBody(req, res, {
      maxBytes: options.maxRequestBytes,
      maxDepth: options.maxJsonDepth,
    });
    const call = parseChatRequest(body);
    const model = call.request.model ?? "";
    if (!textModelsOf(registry.list()).some((m) => m.id === model)) throw unknownTextModel(model);
    const aborter = abortOnClose(res);
    let responseHeader: Headers | undefined;
    const pieces = llm.streamGenerate(call.request, {
      signal: aborter.signal,
      timeoutMs: timeoutOf(req, options),
      contextValues: contextValues(gate),
      onHeader: (header) => {
        responseHeader = header;
      },
    });
    const id = completionId();
    const created = Math.floor(Date.now() / 1000);
    const backendHeaders = (): Record<string, string> => {
      const headers: Record<string, string> = {};
      for (const name of ["x-voxgate-backend", "x-voxgate-attempts"]) {
        const value = responseHeader?.get(name);
        if (value) headers[name] = value;
      }
      return headers;
    };
    if (!call.stream) {
      let text = "";
      let finishReason = "";
      let usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
      for await (const piece of pieces) {
        text += piece.textDelta;
        if (piece.finishReason) {
          finishReason = piece.finishReason;
          usage = {
            prompt_tokens: piece.promptTokens,
            completion_tokens: piece.completionTokens,
            total_tokens: piece.promptTokens + piece.completionTokens,
          };
        }
      }
      writeJson(
        res,
        {
          id,
          object: "chat.completion",
          created,
          model,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: text },
              finish_reason: finishReason || "stop",
              logprobs: null,
            },
          ],
          usage,
        },
        backendHeaders(),
      );
      return;
    }
    const chunk = (delta: Record<string, unknown>, finishReason: string | null) =>
      sseEvent({
        id,
        object: "chat.completion.chunk",
        created,
        model,
        choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
      });
    try {
      for await (const piece of pieces) {
        if (!res.headersSent) {
          res.writeHead(200, {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-store",
            ...backendHeaders(),
          });
          await write(res, chunk({ role: "assistant", content: "" }, null), aborter.signal);
        }
        if (piece.textDelta) {
          await write(res, chunk({ content: piece.textDelta }, null), aborter.signal);
        }
        if (piece.finishReason) {
          await write(res, chunk({}, piece.finishReason), aborter.signal);
          if (call.includeUsage) {
            const usage = {
              prompt_tokens: piece.promptTokens,
              completion_tokens: piece.completionTokens,
              total_tokens: piece.promptTokens + piece.completionTokens,
            };
            await write(
              res,
              sseEvent({ id, object: "chat.completion.chunk", created, model, choices: [], usage }),
              aborter.signal,
            );
          }
        }
      }
    } catch (err) {
      if (!res.headersSent) throw err;
      // The status is gone; the SDK turns an event with an `error` member into an APIError.
      if (!res.destroyed) res.end(sseEvent({ error: toOpenAiError(err).toJSON().error }));
      return;
    }
    res.end(Buffer.from("data: [DONE]\n\n"));
  }

  /** `GET /v1/models` and `GET /v1/models/{id}`. */
  async function models(req: NodeRequest, res: NodeResponse): Promise<void> {
    const all = [
      ...listSpeechModels(registry.list(), modelAliasNames),
      ...textModelsOf(registry.list()).map((m) => ({
        id: m.id,
        object: "model" as const,
        created: m.created,
        owned_by: m.owner,
      })),
    ];
    let id: string;
    try {
      id = decodeURIComponent(pathOf(req).slice("/v1/models/".length));
    } catch {
      throw invalidRequest("the model id in the path is not valid percent-encoding", "model");
    }
    if (pathOf(req) === "/v1/models") {
      writeJson(res, { object: "list", data: all });
      return;
    }
    const model = all.find((m) => m.id === id);
    if (!model) {
      throw new OpenAiError(
        `model "${id}" is not offered by any connected backend`,
        404,
        "model",
        "model_not_found",
      );
    }
    writeJson(res, model);
  }

  /**
   * `GET /v1/audio/models`: the speech part of `GET /v1/models`, for speech-only clients; the
   * same list also under `models`, where Open WebUI reads it.
   */
  async function audioModels(_req: NodeRequest, res: NodeResponse): Promise<void> {
    const data = listSpeechModels(registry.list(), modelAliasNames);
    writeJson(res, { object: "list", data, models: data });
  }

  /**
   * The scope a voice or model list needs: none for a request without `Authorization` when
   * {@link OpenAiFrontendOptions.publicVoiceList} is on.
   */
  const listService = (req: NodeRequest, service: string): string | undefined =>
    options.publicVoiceList && req.headers.authorization === undefined ? undefined : service;

  type Handler = (req: NodeRequest, res: NodeResponse, gate: GateResult) => Promise<void>;
  const handlers: Record<OpenAiRouteId, Handler> = {
    OpenAI_CreateSpeech: speech,
    OpenAI_ListVoices: listVoices,
    OpenAI_ListSpeechModels: audioModels,
    OpenAI_ListModels: models,
    OpenAI_GetModel: models,
    OpenAI_CreateChatCompletion: chat,
  };
  /** Lists a request without `Authorization` may read when the voice list is public. */
  const publicLists = new Set<OpenAiRouteId>(["OpenAI_ListVoices", "OpenAI_ListSpeechModels"]);
  const matcher = createRouteMatcher(OPENAI_ROUTES);

  return {
    routes: OPENAI_ROUTES,
    route(req) {
      const found = matcher.match(req.method ?? "GET", pathOf(req));
      if (found.kind === "none") return undefined;
      if (found.kind === "method-not-allowed") return methodNotAllowed(found.allow.join(", "));
      const id = found.spec.doc.operationId;
      const service = found.spec.service as string;
      return route(publicLists.has(id) ? listService(req, service) : service, handlers[id]);
    },
  };
}

/**
 * Sends the audio of a speech call. Nothing is written until the first chunk arrives, so a call
 * refused before any audio (bad voice, no backend) still gets its HTTP status.
 */
async function sendSpeech(
  res: NodeResponse,
  call: SpeechCall,
  chunks: AsyncIterable<{ contentType: string; data: Uint8Array; extensions: Any[] }>,
  responseHeader: () => Headers | undefined,
  signal: AbortSignal,
): Promise<void> {
  const sse = call.streamFormat === "sse";
  try {
    for await (const chunk of chunks) {
      if (!res.headersSent) {
        const headers: Record<string, string> = {
          "content-type": sse ? "text/event-stream; charset=utf-8" : chunk.contentType,
          "cache-control": "no-store",
        };
        for (const name of ["x-voxgate-backend", "x-voxgate-attempts"]) {
          const value = responseHeader()?.get(name);
          if (value) headers[name] = value;
        }
        const rate = /;\s*rate=(\d+)/.exec(chunk.contentType)?.[1];
        if (call.responseFormat === "pcm" && rate) headers[kSampleRateHeader] = rate;
        res.writeHead(200, headers);
      }
      if (sse) {
        for (const extension of chunk.extensions) {
          const timings = anyUnpack(extension, WordTimingsSchema);
          for (const w of timings?.words ?? []) {
            const event = {
              type: "speech.word",
              word: w.word,
              start_ms: Number(w.startMs),
              end_ms: Number(w.endMs),
              text_offset: w.textOffset,
            };
            await write(res, sseEvent(event), signal);
          }
        }
      }
      if (chunk.data.byteLength === 0) continue;
      const bytes = sse
        ? sseEvent({
            type: "speech.audio.delta",
            audio: Buffer.from(chunk.data).toString("base64"),
          })
        : chunk.data;
      await write(res, bytes, signal);
    }
  } catch (err) {
    if (!res.headersSent) throw err;
    if (sse && !res.destroyed) {
      // The status is gone; the SDK turns an event with an `error` member into an APIError.
      res.end(sseEvent({ type: "error", ...toOpenAiError(err).toJSON() }));
    } else {
      // Cut the transfer: an ended chunked body would pass for a complete (short) file.
      res.destroy();
    }
    return;
  }
  if (!res.headersSent) {
    // A stream with no chunk at all is a TtsService bug; do not answer 200 with nothing.
    throw new ConnectError("the synthesis ended without any audio", Code.Internal);
  }
  if (sse) {
    res.end(
      sseEvent({
        type: "speech.audio.done",
        // voxgate does not count tokens.
        usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0 },
      }),
    );
  } else {
    res.end();
  }
}

function sseEvent(data: unknown): Uint8Array {
  return Buffer.from(`data: ${JSON.stringify(data)}\n\n`);
}

/** Writes `bytes`, waiting for the client to take them when its buffer is full. */
async function write(res: NodeResponse, bytes: Uint8Array, signal: AbortSignal): Promise<void> {
  if ((res as { write(b: Uint8Array): boolean }).write(bytes)) return;
  await once(res as NodeJS.EventEmitter, "drain", { signal });
}

/** An abort signal that fires when the client goes away before the answer is complete. */
function abortOnClose(res: NodeResponse): AbortController {
  const aborter = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) {
      aborter.abort(new ConnectError("the client closed the connection", Code.Canceled));
    }
  });
  return aborter;
}

/**
 * Reads a JSON request body within `limits`, scanned as it arrives: one too large (by its
 * Content-Length or while reading) is answered 413, one nesting too deep 400, as soon as it
 * shows and before it is parsed; the rest is dropped up to the discard limit.
 */
async function readJsonBody(
  req: NodeRequest,
  res: NodeResponse,
  limits: JsonLimits,
): Promise<unknown> {
  const contentType = String(req.headers["content-type"] ?? "");
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new OpenAiError(
      `the request body must be JSON (Content-Type: application/json), got "${contentType}"`,
      415,
      null,
      "unsupported_media_type",
    );
  }
  let text: string;
  try {
    text = await readJsonText(req, limits);
  } catch (err) {
    if (!isJsonLimitError(err)) throw err;
    const error =
      err.limit === "bytes"
        ? new OpenAiError(err.message, 413, null, "request_too_large")
        : invalidRequest(err.message, null);
    // Answer now; writeOpenAiError drops the rest (HTTP/1.1) up to the discard limit.
    writeOpenAiError(req, res, error);
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw invalidRequest(`the request body is not valid JSON: ${(err as Error).message}`, null);
  }
}

/** The deadline asked for in {@link kTimeoutHeader}, cut to the maximum; else the default. */
function timeoutOf(
  req: NodeRequest,
  limits: Pick<OpenAiFrontendOptions, "defaultTimeoutMs" | "maxTimeoutMs">,
): number {
  const raw = req.headers[kTimeoutHeader];
  if (raw === undefined) return limits.defaultTimeoutMs;
  const text = Array.isArray(raw) ? (raw[0] ?? "") : raw;
  if (!/^\d{1,10}$/.test(text) || Number(text) === 0) {
    throw invalidRequest(
      `${kTimeoutHeader} must be a positive whole number of milliseconds, got "${text}"`,
      null,
    );
  }
  return Math.min(Number(text), limits.maxTimeoutMs);
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
