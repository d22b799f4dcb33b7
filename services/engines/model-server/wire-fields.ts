/**
 * Every path and JSON field name the model-server engines put on the wire, in one place, so an
 * adapter can be fitted to a server whose spelling differs by editing this file alone.
 *
 * The OpenAI names follow OpenAI's published speech API; the Qwen3-TTS names follow the
 * predecessor's `server/local_server.py` (README: Engines). Where a server's answer may spell a field in more than one way, a list gives the names to try,
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

/**
 * The Qwen3-TTS local server of `decay256/qwen3-tts-server` (`server/local_server.py`, whose routes
 * the relay's tunnel and the standalone FastAPI server carry over HTTP). Where the standalone
 * server spells a request field differently, both spellings are sent (noted per field).
 */
export const QWEN3_WIRE = {
  /** Server status: GPU name, VRAM, models loaded, `engine_ready`. */
  statusPath: "/api/v1/status",
  /** Voice list: `{voices: [{voice_id, name, type, description}]}`. */
  voicesPath: "/api/v1/tts/voices",
  /** Synthesis with a saved or built-in voice. */
  synthesizePath: "/api/v1/tts/synthesize",
  /** Speech from a voice description (VoiceDesign). */
  designPath: "/api/v1/voices/design",
  /** Clone prompt creation; the server keeps the prompt as `<prompts_dir>/<name>.prompt`. */
  createClonePromptPath: "/api/v1/voices/clone-prompt",
  /** Synthesis with a clone prompt of the server's prompt store, by name. */
  clonePromptTtsPath: "/api/v1/tts/clone-prompt",
  /** Request body of synthesis (`voice`/`instruct` are the standalone server's spellings). */
  synthesize: {
    text: "text",
    voiceIds: ["voice_id", "voice"],
    instructions: ["instructions", "instruct"],
    format: "format",
  },
  /** Request body of voice design. */
  design: { text: "text", instruct: "instruct", language: "language", format: "format" },
  /** Request body of clone prompt creation (`audio` is the standalone server's spelling). */
  createClonePrompt: {
    name: "name",
    audioBase64: ["ref_audio_base64", "audio"],
    referenceText: "ref_text",
    tags: "tags",
  },
  /** Request body of synthesis with a clone prompt. */
  clonePromptTts: { text: "text", prompt: "voice_prompt", language: "language", format: "format" },
  /** Fields of a JSON answer that may hold base64 audio. */
  audioBase64: ["audio", "audio_b64"],
  /** Extension of prompt files in the server's prompt store (`PromptStore`). */
  promptFileSuffix: ".prompt",
  /** Fields that may hold the voice array of the voices answer (or the answer is the array). */
  voicesList: ["voices", "speakers", "data"],
  /** Fields that may hold a voice's id inside a voice object. */
  voiceId: ["voice_id", "id", "name"],
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
