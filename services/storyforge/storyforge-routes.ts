/**
 * The routes of the StoryForge surface (the Tinybox node API StoryForge Cloud calls), declared
 * once: {@link createStoryForgeFrontend} serves exactly these under its base path (a handler per
 * operation id) and the OpenAPI document describes them under the default base path.
 */
import { STORYFORGE_SURFACE } from "../auth/scopes.js";
import type { HttpRouteDoc, HttpRouteSpec } from "../gateway/http-route-spec.js";
import type { JsonSchema } from "../openapi/proto-json-schema.js";
import {
  objectSchema as obj,
  componentRef as ref,
  stringSchema as str,
} from "../openapi/schema-builders.js";

const TAG = "StoryForge";

const num: JsonSchema = { type: "number" };
const int: JsonSchema = { type: "integer" };
const nullable = (type: string): JsonSchema => ({ type: [type, "null"] });
/** An `ok: true` answer with `properties`, or Cloud's soft error, both with HTTP 200. */
const okOrSoft = (properties: Record<string, JsonSchema>) => ({
  description:
    'The answer (`"ok": true`), or a soft error (`"ok": false`, `"error": "<code>: <message>"`) ' +
    "with HTTP 200, as Cloud reads it.",
  content: {
    "application/json": {
      schema: {
        oneOf: [obj({ ok: { const: true }, ...properties }, ["ok"]), ref("StoryForgeSoftError")],
      },
    },
  },
});
const detail = (description: string) => ({
  description,
  content: { "application/json": { schema: ref("StoryForgeDetail") } },
});
const authErrors = {
  "401": detail('No Bearer token: `{"detail": "unauthorized"}`.'),
  "403": detail('A wrong token, or one without the storyforge scope: `{"detail": "forbidden"}`.'),
};
const jsonBody = (schema: JsonSchema) => ({
  required: false,
  description:
    "A JSON object (read up to VOXGATE_STORYFORGE_MAX_JSON_BYTES: 413 and a soft error past it; " +
    "an empty body reads as {}).",
  content: { "application/json": { schema } },
});
const audioFields = {
  audio_b64: str("Base64 audio."),
  url: str("Or a URL under a configured media base (VOXGATE_STORYFORGE_MEDIA_PUBLIC_BASES)."),
};

/** Schemas the StoryForge routes refer to, by component name. */
export const STORYFORGE_SCHEMAS: Record<string, JsonSchema> = {
  StoryForgeSoftError: {
    type: "object",
    description: "Cloud's soft error: HTTP 200 (413 for a body over the limit).",
    properties: {
      ok: { const: false },
      error: str("`<code>: <message>`, e.g. `no_backend: …`, `url_not_allowed: …`."),
    },
    required: ["ok", "error"],
  },
  StoryForgeDetail: {
    type: "object",
    description: "FastAPI's error shape: auth refusals, 404 and 405.",
    properties: { detail: str() },
    required: ["detail"],
  },
};

/** Declares one route; the id stays a literal type, so the handler table must name each route. */
function route<const Id extends string>(
  method: HttpRouteSpec["method"],
  path: string,
  doc: Omit<HttpRouteDoc, "tags" | "operationId"> & { operationId: Id },
  open = false,
): HttpRouteSpec & { doc: { operationId: Id } } {
  return {
    method,
    path,
    service: open ? undefined : STORYFORGE_SURFACE,
    doc: {
      ...doc,
      tags: [TAG],
      responses: { ...doc.responses, ...(open ? {} : authErrors) },
    },
  };
}

/**
 * Every route of the StoryForge surface, relative to its base path (VOXGATE_STORYFORGE_BASE_PATH,
 * `/storyforge` by default). GET routes answer HEAD too; another method is 405, and an unknown
 * path below the base 404, both as `{"detail"}`.
 */
export const STORYFORGE_ROUTES = [
  route(
    "GET",
    "/ping",
    {
      operationId: "StoryForge_Ping",
      summary: "Liveness for Cloud's gateway; needs no token.",
      responses: {
        "200": {
          description: "OK",
          content: {
            "application/json": {
              schema: obj({ ok: { const: true }, service: str(), ts: int }, ["ok"]),
            },
          },
        },
      },
    },
    true,
  ),
  route("GET", "/v1/metrics", {
    operationId: "StoryForge_Metrics",
    summary: "Host metrics as the Tinybox node reported them: CPU, RAM, GPUs of the backends.",
    responses: {
      "200": okOrSoft({
        ts: int,
        cpu_pct: num,
        load: { type: "array", items: num, minItems: 3, maxItems: 3 },
        ram_total_mb: int,
        ram_used_mb: int,
        gpu: { oneOf: [{ type: "object", additionalProperties: true }, { type: "null" }] },
        gpus: { type: "array", items: { type: "object", additionalProperties: true } },
        processes: { type: "array", items: { type: "object", additionalProperties: true } },
      }),
    },
  }),
  route("GET", "/v1/engines", {
    operationId: "StoryForge_Engines",
    summary: "Engines of the connected backends.",
    responses: { "200": okOrSoft({ engines: { type: "array", items: str() } }) },
  }),
  route("GET", "/v1/voice-clips", {
    operationId: "StoryForge_VoiceClips",
    summary: "The voice catalog as clips (`path` is `/voices/<voice id>`).",
    responses: {
      "200": okOrSoft({
        clips: {
          type: "array",
          items: obj({ name: str(), path: str(), engine: str(), voice_id: str() }),
        },
      }),
    },
  }),
  route("GET", "/v1/voice-clips/file", {
    operationId: "StoryForge_VoiceClipFile",
    summary: "A WAV sample spoken with a catalog voice.",
    parameters: [
      {
        name: "path",
        in: "query",
        required: true,
        description: "`/voices/<voice id>`, as /v1/voice-clips lists it.",
        schema: { type: "string" },
      },
    ],
    responses: {
      "200": {
        description: "The sample.",
        content: { "audio/wav": { schema: { type: "string", format: "binary" } } },
      },
      "400": detail('`{"detail": "bad_path"}`: the path is not absolute.'),
      "404": detail('`{"detail": "not_found"}`: no such voice.'),
      default: {
        description: "A soft error (HTTP 200) when speaking failed.",
        content: { "application/json": { schema: ref("StoryForgeSoftError") } },
      },
    },
  }),
  route("POST", "/v1/voices/train", {
    operationId: "StoryForge_TrainVoice",
    summary: "Makes a cloned voice from a clip URL; `voice_ref` is its id.",
    requestBody: jsonBody(
      obj({ clip_url: str(), engine: str(), name: str(), sample_text: str() }, ["clip_url"]),
    ),
    responses: {
      "200": okOrSoft({ voice_ref: str(), voice_id: str(), engine: str(), sample_text: str() }),
    },
  }),
  route("POST", "/v1/tts", {
    operationId: "StoryForge_Tts",
    summary: "Speaks text (TtsService.Synthesize); the audio comes back base64 in JSON.",
    description:
      "`voice` is a voice id or a clip URL (cloned once per clip). `job_id` tags the call so " +
      "/v1/jobs/abort can cancel it.",
    requestBody: jsonBody(
      obj(
        {
          text: str(),
          voice: str(),
          engine: str(),
          job_id: str(),
          delivery: { type: "string", enum: ["neutral", "calm", "urgent", "dramatic", "shout"] },
          styletts2_alpha: num,
          styletts2_beta: num,
          styletts2_steps: num,
          styletts2_scale: num,
          gpu: int,
          threads: int,
        },
        ["text"],
      ),
    ),
    responses: {
      "200": okOrSoft({
        audio_b64: str(),
        content_type: str(),
        gpu: nullable("integer"),
        backend: str("The backend that spoke."),
        voice: str("The voice id spoken with."),
      }),
    },
  }),
  route("POST", "/v1/audio/analyze", {
    operationId: "StoryForge_AnalyzeAudio",
    summary: "Duration, loudness and voice features of audio (VoiceService.AnalyzeAudio).",
    requestBody: jsonBody(obj(audioFields)),
    responses: {
      "200": okOrSoft({
        duration_s: num,
        lufs_i: nullable("number"),
        features: { type: "object", additionalProperties: true },
      }),
    },
  }),
  route("POST", "/v1/audio/age", {
    operationId: "StoryForge_AudioAge",
    summary: "The speaker's age, from a backend classifier (else a soft error).",
    requestBody: jsonBody(obj(audioFields)),
    responses: {
      "200": okOrSoft({ age_years: num, confidence: nullable("number"), method: str() }),
    },
  }),
  route("POST", "/v1/audio/gender", {
    operationId: "StoryForge_AudioGender",
    summary: "The speaker's gender: a backend classifier, else Cloud's median-f0 rule.",
    requestBody: jsonBody(obj(audioFields)),
    responses: {
      "200": okOrSoft({
        gender: { type: "string", enum: ["female", "male"] },
        confidence: nullable("number"),
        method: str(),
        gender_estimated_from_f0: { type: "boolean" },
        f0_hz_median: num,
      }),
    },
  }),
  route("POST", "/v1/llm", {
    operationId: "StoryForge_Llm",
    summary: "Runs a language model: an OpenAI chat-completion body in, a chat completion out.",
    requestBody: jsonBody(ref("OpenAiChatRequest")),
    responses: {
      "200": {
        description: "A chat completion, or a soft error (HTTP 200).",
        content: {
          "application/json": {
            schema: { oneOf: [ref("OpenAiChatCompletion"), ref("StoryForgeSoftError")] },
          },
        },
      },
    },
  }),
  route("POST", "/v1/jobs/abort", {
    operationId: "StoryForge_AbortJob",
    summary: "Cancels a Cloud job's running calls here and its worker render.",
    requestBody: jsonBody(obj({ job_id: str(), id: str("Read when job_id is absent.") })),
    responses: {
      "200": okOrSoft({ job_id: str(), aborted_calls: int, aborted_renders: int }),
    },
  }),
  route("POST", "/v1/admin/vllm/reconfigure", {
    operationId: "StoryForge_ReconfigureLlm",
    summary: "Asks to restart the LLM server on GPUs: always a soft error (`not_supported`).",
    description: "No backend can be told to restart its LLM server; configure it on its host.",
    requestBody: jsonBody(
      obj({ gpus: { type: "array", items: { type: "integer", minimum: 0, maximum: 1023 } } }, [
        "gpus",
      ]),
    ),
    responses: {
      "200": {
        description: "Cloud's soft error.",
        content: { "application/json": { schema: ref("StoryForgeSoftError") } },
      },
    },
  }),
];

/** Operation id of a StoryForge route. */
export type StoryForgeRouteId = (typeof STORYFORGE_ROUTES)[number]["doc"]["operationId"];
