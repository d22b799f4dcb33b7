/**
 * Every path and JSON field name the model-server engines put on the wire, in one place, so an
 * adapter can be fitted to a server whose spelling differs by editing this file alone.
 *
 * The OpenAI names follow OpenAI's published speech API. The Qwen3-TTS local server (port 9700 in
 * the design seed) is only partly specified there: the paths and `{audio, name, ref_text}` come
 * from the seed; the other names are voxgate's assumptions, listed in the README's Engines section.
 * Where a server's answer may spell a field in more than one way, a list gives the names to try,
 * first match wins.
 */

/** OpenAI-compatible speech servers (OpenAI, Kokoro-FastAPI, openedai-speech, vLLM, …). */
export const OPENAI_WIRE = {
  /** Synthesis endpoint, relative to the base URL. */
  speechPath: "/v1/audio/speech",
  /** Optional voice list (not in OpenAI's API; many compatible servers offer it). */
  voicesPath: "/v1/audio/voices",
  /** Request body fields of the speech endpoint. */
  request: {
    model: "model",
    input: "input",
    voice: "voice",
    responseFormat: "response_format",
    speed: "speed",
    instructions: "instructions",
  },
  /** Fields that may hold the voice array of the voices answer (or the answer is the array). */
  voicesList: ["voices", "data"],
  /** Fields that may hold a voice's id inside a voice object. */
  voiceId: ["id", "voice_id", "name"],
  /** OpenAI's speed range; requests are clamped to it. */
  minSpeed: 0.25,
  maxSpeed: 4,
  /** OpenAI's own voices, used when the server lists none and none are configured. */
  builtInVoices: [
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
  ],
} as const;

/** The Qwen3-TTS local server of the design seed. */
export const QWEN3_WIRE = {
  /** Synthesis with a preset voice (seed). */
  ttsPath: "/api/v1/tts",
  /** Synthesis with a clone prompt (seed). */
  clonePromptTtsPath: "/api/v1/tts/clone-prompt",
  /** Clone-prompt creation from reference audio (seed). */
  createClonePromptPath: "/api/v1/voices/clone-prompt",
  /** Voice list (assumption; the configured or built-in list is used when it answers 404). */
  voicesPath: "/api/v1/voices",
  /** Request body of both synthesis endpoints (assumed names). */
  tts: {
    text: "text",
    voice: "voice",
    instructions: "instruct",
    /** The prompt's `.pt` bytes, base64 (clone-prompt endpoint only). */
    promptBase64: "prompt_b64",
    /** The prompt's sha256, so a server may cache prompts by id (clone-prompt endpoint only). */
    promptId: "prompt_id",
  },
  /** Request body of clone-prompt creation; `audio`, `name` and `ref_text` are the seed's. */
  createClonePrompt: {
    audioBase64: "audio",
    name: "name",
    referenceText: "ref_text",
    language: "language",
  },
  /** Fields of a JSON synthesis answer that may hold base64 WAV (when not sent as raw audio). */
  audioBase64: ["audio_b64", "audio"],
  /** Fields of the creation answer that may hold the `.pt` bytes, base64 (seed: "base64 in JSON"). */
  promptBase64: ["prompt_b64", "pt_b64", "prompt", "data"],
  /** Fields that may hold the voice array of the voices answer (or the answer is the array). */
  voicesList: ["voices", "speakers", "data"],
  /** Fields that may hold a voice's id inside a voice object. */
  voiceId: ["id", "name", "speaker"],
  /** The preset speakers of Qwen3-TTS CustomVoice, used when the server lists none. */
  builtInVoices: [
    "vivian",
    "serena",
    "uncle_fu",
    "dylan",
    "eric",
    "ryan",
    "aiden",
    "ono_anna",
    "sohee",
  ],
} as const;
