import type { MessageInitShape } from "@bufbuild/protobuf";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import type { SynthesizeSpeechRequestSchema } from "../../gen/voxgate/v1/tts_pb.js";
import type { ModelAliases, ModelAliasTarget } from "./openai-aliases.js";
import { invalidRequest, OpenAiError } from "./openai-error.js";

/** Audio formats `POST /v1/audio/speech` returns. */
export type SpeechResponseFormat = "mp3" | "opus" | "aac" | "flac" | "wav" | "pcm";
/** How `POST /v1/audio/speech` sends the audio: raw bytes as produced, or SSE events. */
export type SpeechStreamFormat = "audio" | "sse";

/**
 * Model names of OpenAI's speech API. Each means "any engine": callers written for OpenAI work
 * unchanged, and the registry picks the backend.
 */
export const OPENAI_SPEECH_MODELS: readonly string[] = [
  "tts-1",
  "tts-1-hd",
  "gpt-4o-mini-tts",
  "gpt-4o-mini-tts-2025-12-15",
];

/**
 * Voice names of OpenAI's speech API. The voice alias table (`openaiVoiceAliases`, with a
 * built-in default) says which voice each one speaks with.
 */
export const OPENAI_VOICES: ReadonlySet<string> = new Set([
  "alloy",
  "ash",
  "ballad",
  "coral",
  "echo",
  "fable",
  "onyx",
  "nova",
  "sage",
  "shimmer",
  "verse",
  "marin",
  "cedar",
]);

/** Engines and model families the connected backends offer, to resolve a request's `model`. */
export interface SpeechModelCatalog {
  /** Engine ids, e.g. `espeak-ng`. */
  engines: ReadonlySet<string>;
  /** Model families, e.g. `qwen3-tts`. */
  families: ReadonlySet<string>;
}

/** A checked `POST /v1/audio/speech` body, ready for TtsService. */
export interface SpeechCall {
  /** The TtsService request (text, voice, engine/model, speed, instructions, encoding). */
  request: MessageInitShape<typeof SynthesizeSpeechRequestSchema>;
  /** Format asked for. */
  responseFormat: SpeechResponseFormat;
  /** Raw audio or SSE. */
  streamFormat: SpeechStreamFormat;
  /**
   * Whether the caller asked for one whole file (`"stream": false`): sent with Content-Length and
   * exact container sizes once synthesis is done, instead of streamed as it is produced.
   */
  whole: boolean;
}

/** Options of {@link parseSpeechRequest}. */
export interface SpeechRequestOptions {
  /** `model` names that stand for routing criteria (`tts-1` → an engine). @default {} */
  modelAliases?: ModelAliases;
}

/**
 * Kokoro-FastAPI's `lang_code` (one letter per Kokoro pipeline) as the BCP-47 tag voxgate engines
 * take.
 */
const KOKORO_LANG_CODES: Readonly<Record<string, string>> = {
  a: "en-us",
  b: "en-gb",
  e: "es",
  f: "fr",
  h: "hi",
  i: "it",
  j: "ja",
  p: "pt-br",
  z: "zh",
};

const ENCODINGS: Record<SpeechResponseFormat, AudioEncoding> = {
  mp3: AudioEncoding.MP3,
  opus: AudioEncoding.OPUS,
  aac: AudioEncoding.AAC,
  flac: AudioEncoding.FLAC,
  wav: AudioEncoding.WAV,
  pcm: AudioEncoding.PCM,
};
/** Sample rate of `pcm` when the body names none, in Hz: what OpenAI sends and clients assume. */
export const OPENAI_PCM_SAMPLE_RATE_HZ = 24_000;

/**
 * Checks a `POST /v1/audio/speech` body and maps it onto a TtsService request:
 * - `input` (required string) becomes `text`; TtsService checks emptiness and the length limit;
 * - `model`: empty or an OpenAI model name means any engine; an engine id restricts the call to
 *   that engine, a model family to that family; a model alias (`options.modelAliases`, checked
 *   first) to the engine/family it names; anything else is 404 `model_not_found`;
 * - `voice`: a voice id string or `{ "id" }` (voice aliases are resolved by the frontend, which
 *   knows the fleet);
 * - `response_format`: mp3 (the default, as at OpenAI), opus (Ogg), aac (ADTS), flac, wav or pcm
 *   (24 kHz mono s16le, as at OpenAI, converted on the gateway when the engine speaks at another
 *   rate); `sample_rate_hz` (or `sample_rate`), 8000..192000, asks for another rate in any format;
 * - `speed` 0.25..4, `instructions` (passed to engines that take them), `stream_format` audio
 *   (the default) or sse;
 * - `word_timings` (with sse): `speech.word` events with each word's time, where the engine can;
 * - extras other servers take: `stream` (false: one whole file; not with sse), Kokoro's
 *   `download_format` (the format of that whole file) and `lang_code` (the language). Unknown
 *   fields are ignored, as OpenAI-compatible tools send extras (README lists the known ones).
 *
 * @throws OpenAiError 400 naming the field at fault, or 404 for an unknown model.
 */
export function parseSpeechRequest(
  body: unknown,
  catalog: SpeechModelCatalog,
  options: SpeechRequestOptions = {},
): SpeechCall {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalidRequest("the request body must be a JSON object", null);
  }
  const fields = body as Record<string, unknown>;

  const input = fields.input;
  if (input === undefined || input === null) {
    throw invalidRequest("input is required: the text to speak", "input");
  }
  if (typeof input !== "string") throw invalidRequest("input must be a string", "input");

  const model = optionalString(fields, "model") ?? "";
  const target = resolveModel(model, catalog, options.modelAliases);

  let voice = "";
  const rawVoice = fields.voice;
  if (typeof rawVoice === "string") {
    voice = rawVoice;
  } else if (typeof rawVoice === "object" && rawVoice !== null && !Array.isArray(rawVoice)) {
    const id = (rawVoice as Record<string, unknown>).id;
    if (typeof id !== "string" || id === "") {
      throw invalidRequest(
        'voice must be a voice name or an object { "id": "<voice id>" }',
        "voice",
      );
    }
    voice = id;
  } else if (rawVoice !== undefined && rawVoice !== null) {
    throw invalidRequest('voice must be a voice name or an object { "id": "<voice id>" }', "voice");
  }

  const whole = fields.stream ?? true;
  if (typeof whole !== "boolean") {
    throw invalidRequest(`stream must be true or false, got ${JSON.stringify(whole)}`, "stream");
  }
  // Kokoro's download_format is the format of the file as a whole: honoured when it is one.
  const downloadFormat = whole === false ? optionalString(fields, "download_format") : undefined;
  const formatField = downloadFormat !== undefined ? "download_format" : "response_format";
  const format = downloadFormat ?? optionalString(fields, "response_format") ?? "mp3";
  if (!Object.hasOwn(ENCODINGS, format)) {
    throw invalidRequest(
      `${formatField} "${format}" is not one of ${Object.keys(ENCODINGS).join(", ")}`,
      formatField,
    );
  }
  const responseFormat = format as SpeechResponseFormat;
  // Not in OpenAI's API: a rate for any format (`sample_rate` as Kokoro-FastAPI spells it).
  const rate = fields.sample_rate_hz ?? fields.sample_rate ?? undefined;
  if (
    rate !== undefined &&
    (typeof rate !== "number" || !Number.isInteger(rate) || rate < 8000 || rate > 192_000)
  ) {
    throw invalidRequest(
      `sample_rate_hz must be an integer from 8000 to 192000, got ${JSON.stringify(rate)}`,
      fields.sample_rate_hz !== undefined ? "sample_rate_hz" : "sample_rate",
    );
  }
  const sampleRateHz =
    (rate as number | undefined) ?? (responseFormat === "pcm" ? OPENAI_PCM_SAMPLE_RATE_HZ : 0);

  const speed = fields.speed ?? undefined;
  if (speed !== undefined && (typeof speed !== "number" || !(speed >= 0.25 && speed <= 4))) {
    throw invalidRequest(
      `speed must be a number from 0.25 to 4, got ${JSON.stringify(speed)}`,
      "speed",
    );
  }

  const instructions = optionalString(fields, "instructions") ?? "";
  const stream = optionalString(fields, "stream_format") ?? "audio";
  if (stream !== "audio" && stream !== "sse") {
    throw invalidRequest(`stream_format "${stream}" is not one of audio, sse`, "stream_format");
  }
  const wordTimings = fields.word_timings ?? false;
  if (typeof wordTimings !== "boolean") {
    throw invalidRequest(
      `word_timings must be true or false, got ${JSON.stringify(wordTimings)}`,
      "word_timings",
    );
  }
  if (wordTimings && stream !== "sse") {
    throw invalidRequest(
      'word_timings come as events: ask for them with stream_format "sse"',
      "word_timings",
    );
  }
  if (stream === "sse" && whole === false) {
    throw invalidRequest(
      'stream: false asks for one whole file, stream_format "sse" for events; choose one',
      "stream",
    );
  }
  const langCode = optionalString(fields, "lang_code");
  let language = "";
  if (langCode !== undefined && langCode !== "") {
    const tag = KOKORO_LANG_CODES[langCode.toLowerCase()];
    if (tag === undefined) {
      throw invalidRequest(
        `lang_code "${langCode.slice(0, 16)}" is not one of ${Object.keys(KOKORO_LANG_CODES).join(", ")}`,
        "lang_code",
      );
    }
    language = tag;
  }

  return {
    request: {
      text: input,
      voice,
      ...target,
      ...(speed !== undefined ? { speed } : {}),
      instructions,
      encoding: ENCODINGS[responseFormat],
      ...(language ? { language } : {}),
      ...(wordTimings ? { wordTimings } : {}),
      ...(sampleRateHz ? { sampleRateHz } : {}),
    },
    responseFormat,
    streamFormat: stream,
    whole: whole === false,
  };
}

/**
 * Maps a request's `model` onto the engine or model family it restricts the call to: a model
 * alias first (as configured, whether or not a backend offers it now), then OpenAI's names (any
 * engine), engine ids and model families.
 */
export function resolveModel(
  model: string,
  catalog: SpeechModelCatalog,
  aliases: ModelAliases = {},
): { engine?: string; model?: string } {
  if (model !== "" && Object.hasOwn(aliases, model)) {
    const target = aliases[model] as ModelAliasTarget;
    return {
      ...(target.engine ? { engine: target.engine } : {}),
      ...(target.model ? { model: target.model } : {}),
    };
  }
  if (model === "" || OPENAI_SPEECH_MODELS.includes(model)) return {};
  if (catalog.engines.has(model)) return { engine: model };
  if (catalog.families.has(model)) return { model };
  const known = [
    ...OPENAI_SPEECH_MODELS,
    ...Object.keys(aliases),
    ...catalog.engines,
    ...catalog.families,
  ];
  throw new OpenAiError(
    `model "${model}" is not offered by any connected backend; use one of: ${[...new Set(known)].join(", ")}`,
    404,
    "model",
    "model_not_found",
  );
}

function optionalString(fields: Record<string, unknown>, name: string): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw invalidRequest(`${name} must be a string`, name);
  return value;
}
