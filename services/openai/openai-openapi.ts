import type { HttpRouteSpec } from "../gateway/http-route-spec.js";
import { type JsonSchema, schemaRef } from "../openapi/proto-json-schema.js";

const TAG = "OpenAI";
const TTS = "voxgate.v1.TtsService";
const VOICES = "voxgate.v1.VoiceService";
const LLM = "voxgate.v1.LlmService";

const errorResponse = {
  description:
    "An OpenAI error object, with the HTTP status OpenAI uses (400, 401, 403, 404, 429, 500, 503).",
  content: { "application/json": { schema: schemaRef("OpenAiError") } },
};
const timeout = { $ref: "#/components/parameters/TimeoutMs" };
const json = (schema: JsonSchema) => ({ "application/json": { schema } });

/** Schemas the OpenAI operations refer to, by component name. */
export const OPENAI_SCHEMAS: Record<string, JsonSchema> = {
  OpenAiError: {
    type: "object",
    properties: {
      error: {
        type: "object",
        properties: {
          message: { type: "string" },
          type: { type: "string" },
          param: { type: ["string", "null"] },
          code: { type: ["string", "null"] },
        },
        required: ["message", "type"],
      },
    },
    required: ["error"],
  },
  OpenAiSpeechRequest: {
    type: "object",
    required: ["input"],
    properties: {
      input: { type: "string", description: "The text to speak." },
      model: {
        type: "string",
        description:
          "A model alias (VOXGATE_OPENAI_MODEL_ALIASES_JSON, e.g. tts-1 → an engine): its " +
          "criteria; else empty or an OpenAI model name (tts-1, tts-1-hd, gpt-4o-mini-tts): any " +
          "engine; an engine id or model family: only backends offering it.",
      },
      voice: {
        description:
          "A voice id, a voice alias (OpenAI's names have a built-in espeak-ng table; " +
          'VOXGATE_OPENAI_VOICE_ALIASES_JSON adds more), or `{"id": …}`.',
        oneOf: [
          { type: "string" },
          { type: "object", properties: { id: { type: "string" } }, required: ["id"] },
        ],
      },
      response_format: {
        type: "string",
        enum: ["mp3", "wav", "pcm", "opus", "aac", "flac"],
        default: "mp3",
        description:
          "opus: Ogg Opus; aac: AAC-LC in ADTS; pcm: 16-bit mono at 24 kHz unless sample_rate_hz says otherwise.",
      },
      sample_rate_hz: {
        type: "integer",
        minimum: 8000,
        maximum: 192000,
        description:
          "Not in OpenAI's API: the sample rate of any format (`sample_rate` is read too); the gateway converts the engine's rate.",
      },
      speed: { type: "number", minimum: 0.25, maximum: 4 },
      instructions: { type: "string" },
      stream_format: { type: "string", enum: ["audio", "sse"], default: "audio" },
      word_timings: {
        type: "boolean",
        default: false,
        description:
          "With `sse`: `speech.word` events with each word's time, where the engine can.",
      },
      stream: {
        type: "boolean",
        default: true,
        description: "false: one whole file with Content-Length (not with `sse`).",
      },
      download_format: {
        type: "string",
        description: "Kokoro's name for the format of the whole file (`stream: false`).",
      },
      lang_code: { type: "string", description: "Kokoro's name for the language." },
    },
    description: "Unknown fields are ignored, as OpenAI-compatible tools send extras.",
  },
  OpenAiModel: {
    type: "object",
    properties: {
      id: { type: "string" },
      object: { const: "model" },
      created: { type: "integer" },
      owned_by: { type: "string" },
    },
    required: ["id", "object"],
  },
  OpenAiModelList: {
    type: "object",
    properties: {
      object: { const: "list" },
      data: { type: "array", items: schemaRef("OpenAiModel") },
      models: {
        type: "array",
        items: schemaRef("OpenAiModel"),
        description: "The same list again, on /v1/audio/models only (for clients that read it).",
      },
    },
  },
  OpenAiVoiceList: {
    type: "object",
    description: "The shape Open WebUI reads; the voice aliases come first, on the first page.",
    properties: {
      voices: {
        type: "array",
        items: {
          type: "object",
          properties: {
            id: { type: "string" },
            name: { type: "string" },
            type: { type: "string", enum: ["alias", "preset", "cloned"] },
            engine: { type: "string" },
            model: { type: "string" },
            languages: { type: "array", items: { type: "string" } },
            gender: { type: "string", enum: ["female", "male", "neutral"] },
          },
          required: ["id", "name", "type"],
        },
      },
      has_more: { type: "boolean" },
      next_page: { type: "string" },
    },
    required: ["voices", "has_more"],
  },
  OpenAiChatRequest: {
    type: "object",
    required: ["messages"],
    properties: {
      model: { type: "string" },
      messages: {
        type: "array",
        minItems: 1,
        items: {
          type: "object",
          required: ["role", "content"],
          properties: {
            role: { type: "string", enum: ["system", "developer", "user", "assistant"] },
            content: {
              oneOf: [
                { type: "string" },
                {
                  type: "array",
                  items: {
                    type: "object",
                    properties: { type: { const: "text" }, text: { type: "string" } },
                  },
                },
              ],
            },
          },
        },
      },
      max_tokens: { type: "integer", minimum: 1, maximum: 1_000_000 },
      max_completion_tokens: { type: "integer", minimum: 1, maximum: 1_000_000 },
      temperature: { type: "number", minimum: 0, maximum: 2 },
      top_p: { type: "number", minimum: 0, maximum: 1 },
      stop: {
        oneOf: [{ type: "string" }, { type: "array", items: { type: "string" }, maxItems: 4 }],
      },
      stream: { type: "boolean", default: false },
    },
  },
  OpenAiChatCompletion: {
    type: "object",
    properties: {
      id: { type: "string" },
      object: { const: "chat.completion" },
      created: { type: "integer" },
      model: { type: "string" },
      choices: { type: "array", items: { type: "object", additionalProperties: true } },
      usage: { type: "object", additionalProperties: true },
    },
  },
};

/**
 * The OpenAI-compatible routes of {@link createOpenAiFrontend} for the OpenAPI document: their
 * bodies, answers (raw audio, SSE events, JSON) and the token scope each needs.
 */
/** Declares one route; the id stays a literal type, so the handler table must name each route. */
function spec<const Id extends string>(
  route: HttpRouteSpec & { doc: { operationId: Id } },
): HttpRouteSpec & { doc: { operationId: Id } } {
  return route;
}

function openAiRoutes() {
  const models = <const Id extends string>(operationId: Id, summary: string) => ({
    operationId,
    tags: [TAG],
    summary,
    parameters: [timeout],
    responses: {
      "200": { description: "OK", content: json(schemaRef("OpenAiModelList")) },
      default: errorResponse,
    },
  });
  return [
    spec({
      method: "POST",
      path: "/v1/audio/speech",
      service: TTS,
      doc: {
        operationId: "OpenAI_CreateSpeech",
        tags: [TAG],
        summary: "Speaks text (OpenAI's speech API), streamed as it is produced.",
        description:
          "Runs TtsService.StreamSynthesize. With `stream_format: audio` the answer is the raw " +
          "audio, chunked as it is made (a failure midway cuts it); with `sse`, " +
          "`speech.audio.delta` events carry base64 audio, `speech.word` events word times " +
          "(`word_timings`) and `speech.audio.done` ends; with `stream: false`, one whole file " +
          "(TtsService.Synthesize). `voice` and `model` may be aliases.",
        parameters: [timeout],
        requestBody: { required: true, content: json(schemaRef("OpenAiSpeechRequest")) },
        responses: {
          "200": {
            description: "The audio.",
            content: {
              "audio/mpeg": { schema: { type: "string", format: "binary" } },
              "audio/wav": { schema: { type: "string", format: "binary" } },
              "audio/L16": { schema: { type: "string", format: "binary" } },
              "text/event-stream": { schema: { type: "string" } },
            },
          },
          default: errorResponse,
        },
      },
    }),
    spec({
      method: "GET",
      path: "/v1/audio/voices",
      service: VOICES,
      doc: {
        operationId: "OpenAI_ListVoices",
        tags: [TAG],
        summary: "Lists voice aliases and voices (VoiceService), up to 1000 per answer.",
        description:
          "With VOXGATE_OPENAI_PUBLIC_VOICE_LIST=true a request without Authorization is " +
          "answered too (preset voices and aliases only), as is GET /v1/audio/models.",
        parameters: [
          { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 1000 } },
          { name: "after", in: "query", schema: { type: "string" } },
          timeout,
        ],
        responses: {
          "200": { description: "OK", content: json(schemaRef("OpenAiVoiceList")) },
          default: errorResponse,
        },
      },
    }),
    spec({
      method: "GET",
      path: "/v1/audio/models",
      service: TTS,
      doc: {
        ...models("OpenAI_ListSpeechModels", "Lists the speech models backends offer."),
      },
    }),
    spec({
      method: "GET",
      path: "/v1/models",
      service: TTS,
      doc: {
        ...models("OpenAI_ListModels", "Lists the speech and language models backends offer."),
      },
    }),
    spec({
      method: "GET",
      path: "/v1/models/{id=**}",
      service: TTS,
      doc: {
        operationId: "OpenAI_GetModel",
        tags: [TAG],
        summary: "Describes one model.",
        parameters: [
          { name: "id", in: "path", required: true, schema: { type: "string" } },
          timeout,
        ],
        responses: {
          "200": { description: "OK", content: json(schemaRef("OpenAiModel")) },
          default: errorResponse,
        },
      },
    }),
    spec({
      method: "POST",
      path: "/v1/chat/completions",
      service: LLM,
      doc: {
        operationId: "OpenAI_CreateChatCompletion",
        tags: [TAG],
        summary: "Runs a language model (LlmService), whole or streamed as SSE chunks.",
        parameters: [timeout],
        requestBody: { required: true, content: json(schemaRef("OpenAiChatRequest")) },
        responses: {
          "200": {
            description:
              "A chat completion, or `chat.completion.chunk` events when `stream` is true.",
            content: {
              ...json(schemaRef("OpenAiChatCompletion")),
              "text/event-stream": { schema: { type: "string" } },
            },
          },
          default: errorResponse,
        },
      },
    }),
  ];
}

/** The OpenAI-compatible routes {@link createOpenAiFrontend} serves, declared once. */
export const OPENAI_ROUTES = openAiRoutes() satisfies readonly HttpRouteSpec[];

/** Operation id of an OpenAI-compatible route. */
export type OpenAiRouteId = (typeof OPENAI_ROUTES)[number]["doc"]["operationId"];
