/**
 * An engine that forwards text generation to an OpenAI-compatible chat server on the GPU host
 * (vLLM, llama.cpp's `llama-server`, Ollama, … : `POST /v1/chat/completions` with SSE streaming),
 * so an existing LLM server plugs into an agent unchanged.
 */
import type { Logger } from "pino";
import { EngineUnavailableError, SynthesisFailedError } from "../engine-errors.js";
import type {
  EngineGenerateRequest,
  EngineInfo,
  EngineTextDelta,
  TtsEngine,
} from "../tts-engine.js";
import { createEngineCalls } from "./model-server-base.js";
import { createModelServerClient, type ModelServerClient } from "./model-server-client.js";
import { readSseData } from "./sse-events.js";

/** Engine id of {@link createOpenAiLlmEngine}. */
export const OPENAI_LLM_ENGINE_ID = "openai-llm";

/** Paths and fields of the OpenAI chat API as the engine sends and reads them. */
export const OPENAI_CHAT_WIRE = {
  chatPath: "/v1/chat/completions",
  modelsPath: "/v1/models",
} as const;

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,255}$/;

/** Options of {@link createOpenAiLlmEngine}. */
export interface OpenAiLlmEngineOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:8000`; a trailing `/v1` is dropped. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`; never logged. */
  apiKey?: string;
  /**
   * Models offered. When empty, the server's `GET /v1/models` is read at start; an engine that
   * ends up with no model refuses to start.
   */
  models?: readonly string[];
  /** Longest wait for the answer to start and between two pieces of it, in ms. @default 120000 */
  timeoutMs?: number;
  /** Longest wait for the model list at start, in ms. @default 10000 */
  discoveryTimeoutMs?: number;
  /** Largest answer of one request, in bytes. @default 67108864 */
  maxResponseBytes?: number;
  /** Logger; the engine logs through `log.child({ component: "openai-llm-engine" })`. */
  log?: Logger;
  /** The fetch to use (tests). @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * Creates the engine. `generate` posts `{model, messages, stream: true, stream_options:
 * {include_usage: true}, max_tokens?, temperature?, top_p?, stop?}` and yields each
 * `choices[0].delta.content` as its SSE event arrives, then one last delta with the finish reason
 * and the `usage` counts. Aborting the signal closes the HTTP request, which vLLM, llama.cpp and
 * Ollama take as a cancel. A stream that ends before `[DONE]` or a finish reason fails the call
 * (never a short answer passed off as whole). The engine does not speak.
 */
export async function createOpenAiLlmEngine(options: OpenAiLlmEngineOptions): Promise<TtsEngine> {
  const engineId = OPENAI_LLM_ENGINE_ID;
  const log = options.log?.child({ component: "openai-llm-engine" });
  const client = createModelServerClient({
    engineId,
    baseUrl: options.baseUrl.replace(/\/v1\/*$/, ""),
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.maxResponseBytes === undefined
      ? {}
      : { maxResponseBytes: options.maxResponseBytes }),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const models =
    options.models && options.models.length > 0
      ? [...options.models]
      : await discoverModels(client, options.discoveryTimeoutMs ?? 10_000, log);
  if (models.length === 0) {
    throw new EngineUnavailableError(
      engineId,
      `the model server at ${client.baseUrl} listed no model (GET /v1/models); name them in VOXGATE_AGENT_ENGINE_LLM_MODELS`,
    );
  }
  log?.info({ url: client.baseUrl, models }, "engine ready");

  const info: EngineInfo = {
    id: engineId,
    version: "1",
    modelFamily: "",
    modelSize: "",
    format: { sampleRateHz: 24_000, channels: 1 },
    voices: [],
    supportsSpeed: false,
    speaks: false,
    textModels: models,
  };
  const calls = createEngineCalls(engineId);
  const context = { engineId, voiceId: "", knownVoiceIds: [] };

  return {
    info,
    // biome-ignore lint/correctness/useYield: this engine never speaks; the host never asks it to
    async *synthesize() {
      throw new EngineUnavailableError(engineId, "openai-llm engines do not speak");
    },
    generate(request: EngineGenerateRequest, signal: AbortSignal) {
      return calls.stream(signal, context, (inner) =>
        streamChat(client, engineId, chatBody(request, models[0] as string), inner),
      );
    },
    async close() {
      calls.close();
    },
  };
}

/** The OpenAI chat body of a request, streaming with usage. */
export function chatBody(
  request: EngineGenerateRequest,
  defaultModel: string,
): Record<string, unknown> {
  return {
    model: request.model || defaultModel,
    messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
    stream: true,
    stream_options: { include_usage: true },
    ...(request.maxTokens > 0 ? { max_tokens: request.maxTokens } : {}),
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.topP !== undefined ? { top_p: request.topP } : {}),
    ...(request.stop.length > 0 ? { stop: [...request.stop] } : {}),
  };
}

/**
 * Posts a streaming chat completion to `path` and yields its deltas, then the closing delta.
 * Shared by every engine whose server speaks OpenAI's chat streaming.
 */
export async function* streamChat(
  client: ModelServerClient,
  engineId: string,
  body: Record<string, unknown>,
  signal: AbortSignal,
  path: string = OPENAI_CHAT_WIRE.chatPath,
): AsyncIterable<EngineTextDelta> {
  const response = await client.request({
    method: "POST",
    path,
    accept: "text/event-stream, application/json",
    signal,
    json: body,
  });
  if (response.contentType === "application/json") {
    // A server that ignores `stream` answers one completion body.
    yield completionDelta(await response.json(), engineId);
    return;
  }
  let finishReason = "";
  let model = "";
  let promptTokens: number | undefined;
  let completionTokens: number | undefined;
  let done = false;
  let sentModel = false;
  try {
    for await (const data of readSseData(response.body())) {
      if (data.trim() === "[DONE]") {
        done = true;
        break;
      }
      let event: ChatChunk;
      try {
        event = JSON.parse(data) as ChatChunk;
      } catch (err) {
        throw new SynthesisFailedError(
          engineId,
          "the model server sent an event that is not JSON",
          {
            cause: err,
          },
        );
      }
      if (event.error) {
        const message =
          typeof event.error === "string" ? event.error : (event.error.message ?? "unknown error");
        throw new SynthesisFailedError(engineId, `the model server failed mid-stream: ${message}`);
      }
      if (typeof event.model === "string") model = event.model;
      if (event.usage) {
        promptTokens = event.usage.prompt_tokens ?? promptTokens;
        completionTokens = event.usage.completion_tokens ?? completionTokens;
      }
      const choice = event.choices?.[0];
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      const text = choice?.delta?.content ?? choice?.text ?? "";
      if (typeof text === "string" && text !== "") {
        yield { text, ...(!sentModel && model ? { model } : {}) };
        sentModel ||= model !== "";
      }
    }
  } catch (err) {
    if (err instanceof RangeError) throw new SynthesisFailedError(engineId, err.message);
    throw err;
  }
  if (!done && !finishReason) {
    throw new SynthesisFailedError(
      engineId,
      "the model server's stream ended before it finished (no [DONE] and no finish_reason)",
    );
  }
  yield {
    text: "",
    finishReason: finishReason || "stop",
    ...(model ? { model } : {}),
    ...(promptTokens !== undefined ? { promptTokens } : {}),
    ...(completionTokens !== undefined ? { completionTokens } : {}),
  };
}

/** One whole OpenAI chat completion (`choices[0].message.content` or `.text`) as a last delta. */
export function completionDelta(value: unknown, engineId: string): EngineTextDelta {
  const body = (value ?? {}) as ChatChunk;
  if (body.error || (body as { ok?: unknown }).ok === false) {
    const error = body.error;
    const message =
      typeof error === "string" ? error : (error?.message ?? JSON.stringify(value).slice(0, 300));
    throw new SynthesisFailedError(engineId, `the model server failed: ${message}`);
  }
  const choice = body.choices?.[0];
  const text = choice?.message?.content ?? choice?.text;
  if (typeof text !== "string") {
    throw new SynthesisFailedError(
      engineId,
      "the model server's answer has no choices[0].message.content",
    );
  }
  return {
    text,
    finishReason: choice?.finish_reason || "stop",
    ...(typeof body.model === "string" ? { model: body.model } : {}),
    ...(body.usage?.prompt_tokens !== undefined ? { promptTokens: body.usage.prompt_tokens } : {}),
    ...(body.usage?.completion_tokens !== undefined
      ? { completionTokens: body.usage.completion_tokens }
      : {}),
  };
}

interface ChatChunk {
  model?: string;
  error?: string | { message?: string };
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  choices?: Array<{
    delta?: { content?: string | null };
    message?: { content?: string | null };
    text?: string;
    finish_reason?: string | null;
  }>;
}

async function discoverModels(
  client: ModelServerClient,
  timeoutMs: number,
  log: Logger | undefined,
): Promise<string[]> {
  try {
    const response = await client.request({
      method: "GET",
      path: OPENAI_CHAT_WIRE.modelsPath,
      accept: "application/json",
      signal: new AbortController().signal,
      timeoutMs,
    });
    const value = (await response.json()) as { data?: unknown; models?: unknown };
    const list = Array.isArray(value?.data)
      ? value.data
      : Array.isArray(value?.models)
        ? value.models
        : [];
    const ids = list
      .map((m: unknown) =>
        typeof m === "string"
          ? m
          : ((m as { id?: unknown; name?: unknown })?.id ?? (m as { name?: unknown })?.name),
      )
      .filter((id: unknown): id is string => typeof id === "string" && MODEL_NAME.test(id));
    return [...new Set(ids)].slice(0, 100);
  } catch (err) {
    log?.warn({ err: { message: (err as Error).message } }, "could not read the model list");
    return [];
  }
}
