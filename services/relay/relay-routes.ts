/**
 * The routes of the Qwen3 relay surface, declared once: {@link createRelayFrontend} serves
 * exactly these (a handler per operation id) and the OpenAPI document describes them.
 */
import { BackendAdminService } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { PromptStoreService } from "../../gen/voxgate/v1/prompt_store_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { VoiceService } from "../../gen/voxgate/v1/voice_pb.js";
import type { HttpRouteDoc, HttpRouteSpec } from "../gateway/http-route-spec.js";
import type { JsonSchema } from "../openapi/proto-json-schema.js";
import {
  objectSchema as obj,
  componentRef as ref,
  stringSchema as str,
} from "../openapi/schema-builders.js";

const TTS = TtsService.typeName;
const VOICES = VoiceService.typeName;
const PROMPTS = PromptStoreService.typeName;
const ADMIN = BackendAdminService.typeName;
const TAG = "Relay";

const num: JsonSchema = { type: "number" };
const int: JsonSchema = { type: "integer" };
const bool: JsonSchema = { type: "boolean" };
const strings: JsonSchema = { type: "array", items: { type: "string" } };
const json = (schema: JsonSchema, description = "OK") => ({
  description,
  content: { "application/json": { schema } },
});
const body = (schema: JsonSchema) => ({
  required: true,
  content: { "application/json": { schema } },
});
const errors = {
  default: {
    description:
      'A relay error, `{"error": …, "code": …}`: 400 bad request, 401/403 token, 404 unknown ' +
      "name, 413 over a limit, 429 busy, 501 not served by voxgate, 502 a backend failed, 503 " +
      "no backend can serve (the `capability` member names a missing mode), 504 deadline.",
    content: { "application/json": { schema: ref("RelayError") } },
  },
};
const audio = {
  description: "The audio, whole, with `x-duration-seconds`, `x-sample-rate` and `x-voice-id`.",
  content: Object.fromEntries(
    ["audio/mpeg", "audio/wav", "audio/L16"].map((t) => [
      t,
      { schema: { type: "string", format: "binary" } },
    ]),
  ),
};
const language = str("A language name (`English`, `Auto`, …) or a BCP-47 tag.");
const format = (fallback: string): JsonSchema => ({
  type: "string",
  enum: ["wav", "mp3", "pcm"],
  default: fallback,
});
const promptList = json(obj({ prompts: { type: "array", items: ref("RelayPrompt") }, count: int }));
const labelProperties = {
  character: str(),
  emotion: str(),
  intensity: str(),
  description: str(),
  instruct: str(),
  base_description: str(),
};
const createPromptBody = obj(
  {
    name: str("The prompt's name, unique per token (re-creating a name replaces it)."),
    audio: str("Base64 reference audio (`ref_audio_base64` is read too)."),
    ref_audio_base64: str(),
    ref_text: str("What the reference audio says (an ICL prompt; none: x-vector only)."),
    tags: strings,
    language,
    ...labelProperties,
  },
  ["name"],
);
/**
 * A batch's answer: one result per item, `okStatus` with `fields` or `error` with a message, and
 * the counts.
 */
const batchAnswer = (okStatus: string, fields: Record<string, JsonSchema>) =>
  json(
    obj({
      results: {
        type: "array",
        items: obj({
          name: str(),
          status: { type: "string", enum: [okStatus, "error"] },
          ...fields,
          error: str(),
        }),
      },
      total: int,
      succeeded: int,
    }),
  );
const designClip = {
  audio: str("Base64 audio."),
  format: str(),
  sample_rate: int,
  duration_s: num,
};
const pathName = (description: string) => ({
  in: "path",
  required: true,
  description,
  schema: { type: "string" },
});
const query = (name: string, description: string) => ({
  name,
  in: "query",
  required: false,
  description,
  schema: { type: "string" },
});
/** A mode only some model servers offer: 503 naming the capability while none is connected. */
const modeDoc = <const Id extends string>(operationId: Id, summary: string) => ({
  operationId,
  tags: [TAG],
  summary,
  description:
    "Routed to backends that declare the capability (the Qwen3 adapter); while none is " +
    "connected, 503 with the relay's error naming it.",
  responses: { "200": json({ type: "object", additionalProperties: true }), ...errors },
});
/** A voice package route: voxgate has no such file format. */
const packageDoc = <const Id extends string>(operationId: Id, summary: string) => ({
  operationId,
  tags: [TAG],
  summary: `${summary} Not served: 501.`,
  description:
    "Voice packages (.voicepkg.zip) were a file format of the relay's GPU server; cloned " +
    "voices and named prompts live in voxgate's own store.",
  responses: { "501": { ...errors.default, description: "Not served by voxgate." } },
});

/** Schemas the relay routes refer to, by component name. */
export const RELAY_SCHEMAS: Record<string, JsonSchema> = {
  RelayError: {
    type: "object",
    description: "The relay's error body; `code` and any further members are voxgate's.",
    properties: {
      error: str("What went wrong, for people (what relay clients read)."),
      code: str("Machine-readable: a gRPC code name or a relay one (`capability_missing`)."),
      capability: str("The missing mode, when no backend declares it."),
    },
    required: ["error", "code"],
    additionalProperties: true,
  },
  RelayPrompt: {
    type: "object",
    description: "A named clone prompt as the relay listed it, plus where voxgate keeps it.",
    properties: {
      name: str(),
      tags: strings,
      ref_text: { type: ["string", "null"] },
      created_at: { type: ["string", "null"], format: "date-time" },
      ref_audio_duration_s: { type: ["number", "null"] },
      x_vector_only_mode: bool,
      icl_mode: bool,
      ...labelProperties,
      prompt_id: str("The name again (the relay's id)."),
      gcs_path: str("The prompt's key in voxgate's store."),
      digest: str("sha256 of the prompt bytes."),
      model: str(),
      model_size: str(),
      engine: str(),
      size_bytes: int,
    },
    required: ["name", "tags", "prompt_id", "gcs_path"],
  },
};

/**
 * Declares one relay route: the id is kept as a literal type, so the frontend's handler table
 * must name every route.
 */
function route<const Id extends string>(
  method: HttpRouteSpec["method"],
  path: string,
  service: string,
  doc: HttpRouteDoc & { operationId: Id },
): HttpRouteSpec & { doc: { operationId: Id } } {
  return { method, path, service, doc };
}

/**
 * Every route of the relay surface (`decay256/qwen3-tts-server` `contracts/relay-api.yaml` and
 * the routes its clients call), in match order: a literal path comes before a template that
 * would also match it.
 */
export const RELAY_ROUTES = [
  // ── Status ─────────────────────────────────────────────────────────────────────────────────
  route("GET", "/api/v1/status", TTS, {
    operationId: "Relay_Status",
    tags: [TAG],
    summary: "The relay's status: connected GPU backends, RunPod, uptime.",
    responses: {
      "200": json(
        obj({
          relay: { const: "ok" },
          tunnel_connected: bool,
          connected_clients: int,
          uptime_seconds: num,
          runpod_configured: bool,
          runpod_available: bool,
          runpod_health: { type: "object", additionalProperties: true },
          local: obj({
            status: str(),
            models_loaded: strings,
            prompts_count: int,
            engine_ready: bool,
            backends: strings,
          }),
        }),
      ),
      ...errors,
    },
  }),
  route("GET", "/api/v1/tts/status", TTS, {
    operationId: "Relay_TtsStatus",
    tags: [TAG],
    summary: "TTS status: tunnel, RunPod, loaded models, prompt count.",
    responses: {
      "200": json(
        obj({
          status: str(),
          tunnel_connected: bool,
          runpod_configured: bool,
          runpod_available: bool,
          runpod_health: { type: "object", additionalProperties: true },
          models_loaded: strings,
          prompts_count: int,
          local_error: str(),
        }),
      ),
      ...errors,
    },
  }),
  route("POST", "/api/v1/tts/warmup", TTS, {
    operationId: "Relay_Warmup",
    tags: [TAG],
    summary: "Wakes a RunPod worker unless a GPU backend is connected.",
    requestBody: { required: false, content: { "application/json": { schema: obj({}) } } },
    responses: {
      "200": json(
        obj(
          {
            status: { type: "string", enum: ["connected", "noop", "warming"] },
            message: str(),
            workers_ready: int,
          },
          ["status", "message"],
        ),
      ),
      ...errors,
    },
  }),
  route("GET", "/api/v1/debug", ADMIN, {
    operationId: "Relay_Debug",
    tags: [TAG],
    summary: "Debug view: memory, backends, in-flight calls, recent registry events.",
    description: "The same events stream live over the WebSocket at /ws/debug.",
    responses: {
      "200": json(
        obj({
          mem_rss_mb: num,
          mem_heap_used_mb: num,
          tunnel_connected: bool,
          pending_requests: int,
          uptime_seconds: num,
          backends: {
            type: "array",
            items: obj({
              id: str(),
              kind: str(),
              state: str(),
              in_flight: int,
              slots: int,
              address: str(),
              calls_total: int,
              failures_total: int,
              last_error: str(),
            }),
          },
          recent_events: { type: "array", items: { type: "object", additionalProperties: true } },
        }),
      ),
      ...errors,
    },
  }),

  // ── Clone prompts by name ──────────────────────────────────────────────────────────────────
  route("POST", "/api/v1/voices/clone-prompt", PROMPTS, {
    operationId: "Relay_CreateClonePrompt",
    tags: [TAG],
    summary: "Makes a named clone prompt from reference audio (PromptStoreService).",
    requestBody: body(createPromptBody),
    responses: {
      "200": json(
        obj(
          {
            name: str(),
            status: { const: "created" },
            prompt_id: str(),
            gcs_path: str(),
            metadata: ref("RelayPrompt"),
          },
          ["name", "status", "prompt_id", "gcs_path"],
        ),
      ),
      ...errors,
    },
  }),
  route("POST", "/api/v1/voices/clone-prompt/batch", PROMPTS, {
    operationId: "Relay_CreateClonePrompts",
    tags: [TAG],
    summary: "Makes up to 100 named clone prompts; one bad item does not fail the others.",
    requestBody: body(
      obj({ items: { type: "array", minItems: 1, maxItems: 100, items: createPromptBody } }, [
        "items",
      ]),
    ),
    responses: { "200": batchAnswer("created", { gcs_path: str() }), ...errors },
  }),
  route("GET", "/api/v1/voices/prompts", PROMPTS, {
    operationId: "Relay_ListPrompts",
    tags: [TAG],
    summary: "Lists the caller's named prompts (up to 10000), filtered by tags.",
    parameters: [query("tags", "Comma-separated tags a prompt must all have.")],
    responses: { "200": promptList, ...errors },
  }),
  route("GET", "/api/v1/voices/prompts/search", PROMPTS, {
    operationId: "Relay_SearchPrompts",
    tags: [TAG],
    summary: "Searches named prompts by tags, labels and text.",
    parameters: [
      query("tags", "Comma-separated tags a prompt must all have."),
      query("character", "The `character` label."),
      query("emotion", "The `emotion` label."),
      query("intensity", "The `intensity` label."),
      query("q", "Text in the name, reference text or labels."),
    ],
    responses: { "200": promptList, ...errors },
  }),
  route("GET", "/api/v1/voices/prompts/{name}", PROMPTS, {
    operationId: "Relay_GetPrompt",
    tags: [TAG],
    summary: "One named prompt.",
    parameters: [{ name: "name", ...pathName("The prompt's name.") }],
    responses: { "200": json(ref("RelayPrompt")), ...errors },
  }),
  route("DELETE", "/api/v1/voices/prompts/{name}", PROMPTS, {
    operationId: "Relay_DeletePrompt",
    tags: [TAG],
    summary: "Deletes a named prompt.",
    parameters: [{ name: "name", ...pathName("The prompt's name.") }],
    responses: {
      "200": json(obj({ name: str(), status: { const: "deleted" } }, ["name", "status"])),
      ...errors,
    },
  }),
  route("GET", "/api/v1/voices/characters", PROMPTS, {
    operationId: "Relay_ListCharacters",
    tags: [TAG],
    summary: "Characters of the named prompts (their `character` label), with emotions and modes.",
    responses: {
      "200": json(
        obj({
          characters: {
            type: "array",
            items: obj({ character: str(), prompt_count: int, emotions: strings, modes: strings }),
          },
          count: int,
        }),
      ),
      ...errors,
    },
  }),
  route("POST", "/api/v1/tts/clone-prompt", TTS, {
    operationId: "Relay_SpeakWithPrompt",
    tags: [TAG],
    summary: "Speaks text with a named clone prompt.",
    description:
      "Answers JSON with base64 audio, or the raw audio when the request accepts `audio/*`.",
    requestBody: body(
      obj(
        {
          text: str(),
          voice_prompt: str("The prompt's name."),
          language,
          format: format("wav"),
        },
        ["text", "voice_prompt"],
      ),
    ),
    responses: {
      "200": {
        description: "The clip: JSON with base64 audio, or raw audio (`Accept: audio/*`).",
        content: {
          "application/json": { schema: obj(designClip) },
          ...audio.content,
        },
      },
      ...errors,
    },
  }),

  // ── Voices (the relay's /api/v1/tts/* routes, used by client/tts_client.py) ──────────────
  route("GET", "/api/v1/tts/voices", VOICES, {
    operationId: "Relay_ListVoices",
    tags: [TAG],
    summary: "Lists voices (VoiceService), up to 10000.",
    responses: {
      "200": json(
        obj({
          voices: {
            type: "array",
            items: obj({
              voice_id: str(),
              name: str(),
              type: { type: "string", enum: ["cloned", "preset"] },
              description: { type: ["string", "null"] },
              engine: str(),
              languages: strings,
            }),
          },
        }),
      ),
      ...errors,
    },
  }),
  route("POST", "/api/v1/tts/synthesize", TTS, {
    operationId: "Relay_Synthesize",
    tags: [TAG],
    summary: "Speaks text with a voice id, a prompt name or a cloned voice's name.",
    description:
      "`ref_audio`/`ref_audio_b64` (one-shot cloning) is a mode only some backends offer: " +
      "503 naming `voice_clone_oneshot` while none is connected.",
    requestBody: body(
      obj(
        {
          text: str(),
          voice_id: str(),
          voice_name: str(),
          format: format("mp3"),
          instructions: str(),
          language,
          ref_audio: str(),
          ref_audio_b64: str(),
        },
        ["text"],
      ),
    ),
    responses: { "200": audio, ...errors },
  }),
  route("POST", "/api/v1/tts/clone", VOICES, {
    operationId: "Relay_CloneVoice",
    tags: [TAG],
    summary: "Makes a cloned voice from reference audio (VoiceService.CreateVoice).",
    requestBody: {
      required: true,
      content: {
        "multipart/form-data": {
          schema: obj(
            { voice_name: str(), reference_audio: { type: "string", format: "binary" } },
            ["voice_name", "reference_audio"],
          ),
        },
        "application/json": {
          schema: obj({ voice_name: str(), reference_audio: str("Base64 audio.") }, [
            "voice_name",
            "reference_audio",
          ]),
        },
      },
    },
    responses: {
      "200": json(
        obj({ voice_id: str(), name: str(), type: { const: "cloned" } }, ["voice_id", "type"]),
      ),
      ...errors,
    },
  }),
  route("DELETE", "/api/v1/tts/voices/{voice_id}", VOICES, {
    operationId: "Relay_DeleteVoice",
    tags: [TAG],
    summary: "Deletes a cloned voice.",
    parameters: [{ name: "voice_id", ...pathName("The voice's id.") }],
    responses: { "200": json(obj({ deleted: str() }, ["deleted"])), ...errors },
  }),

  // ── Modes of the Qwen3 model server ────────────────────────────────────────────────────────
  route("POST", "/api/v1/voices/design", TTS, {
    operationId: "Relay_DesignVoice",
    tags: [TAG],
    summary: "Speaks text with a voice made from a description; can keep it as a named prompt.",
    description:
      "Routed to backends that declare `voice_design`; 503 naming it while none is connected. " +
      "`create_prompt` needs `prompt_name` and format `wav`.",
    requestBody: body(
      obj(
        {
          text: str(),
          instruct: str("The voice's description."),
          create_prompt: bool,
          prompt_name: str(),
          format: format("wav"),
          language,
          tags: strings,
        },
        ["text", "instruct"],
      ),
    ),
    responses: {
      "200": json(
        obj({ ...designClip, prompt_created: bool, prompt_name: str(), gcs_path: str() }),
      ),
      ...errors,
    },
  }),
  route("POST", "/api/v1/tts/design", TTS, {
    operationId: "Relay_TtsDesign",
    tags: [TAG],
    summary: "Speaks text with a voice made from a description (the web backend's route).",
    requestBody: body(
      obj({ text: str(), description: str(), format: format("wav"), language }, [
        "text",
        "description",
      ]),
    ),
    responses: { "200": json(obj({ ...designClip, description: str() })), ...errors },
  }),
  route("POST", "/api/v1/voices/design/batch", TTS, {
    operationId: "Relay_DesignVoices",
    tags: [TAG],
    summary: "Designs up to 100 voices; can keep each as a named prompt.",
    requestBody: body(
      obj(
        {
          items: {
            type: "array",
            minItems: 1,
            maxItems: 100,
            items: obj(
              {
                ...labelProperties,
                name: str(),
                text: str(),
                instruct: str(),
                ref_text: str(),
                tags: strings,
                language,
              },
              ["text", "instruct"],
            ),
          },
          format: format("wav"),
          create_prompts: bool,
          tags_prefix: strings,
          prompt_tags_prefix: strings,
        },
        ["items"],
      ),
    ),
    responses: {
      "200": batchAnswer("ok", {
        ...designClip,
        prompt_created: bool,
        prompt_tags: strings,
        prompt_error: str(),
      }),
      ...errors,
    },
  }),
  route(
    "POST",
    "/api/v1/voices/cast",
    TTS,
    modeDoc("Relay_CastVoices", "Casts voices for characters (capability `voice_cast`)."),
  ),
  route(
    "GET",
    "/api/v1/voices/emotions",
    VOICES,
    modeDoc("Relay_ListEmotions", "Emotion presets (capability `emotion_presets`)."),
  ),
  route(
    "POST",
    "/api/v1/audio/normalize",
    TTS,
    modeDoc("Relay_NormalizeAudio", "Normalizes audio loudness (capability `audio_normalize`)."),
  ),

  // ── Voice packages ─────────────────────────────────────────────────────────────────────────
  route("GET", "/api/v1/tts/voices/{voice_id}/package", VOICES, {
    ...packageDoc("Relay_ExportVoicePackage", "Exports a voice package."),
    parameters: [{ name: "voice_id", ...pathName("The voice's id.") }],
  }),
  route(
    "POST",
    "/api/v1/tts/voices/import",
    VOICES,
    packageDoc("Relay_ImportVoicePackage", "Imports a voice package."),
  ),
  route(
    "POST",
    "/api/v1/tts/voices/sync",
    VOICES,
    packageDoc("Relay_SyncVoicePackages", "Syncs voice packages."),
  ),
];

/** Operation id of a relay route. */
export type RelayRouteId = (typeof RELAY_ROUTES)[number]["doc"]["operationId"];
