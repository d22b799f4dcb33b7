/**
 * The engine contract: what an agent needs from a text-to-speech engine.
 *
 * An engine turns text into raw PCM audio. Containers (WAV, MP3, …) are the gateway's business, so
 * every engine speaks the same small shape whatever model it wraps.
 */

/** Sample layout every engine emits: signed 16-bit little-endian PCM, interleaved channels. */
export interface PcmFormat {
  /** Samples per second, e.g. 22050. */
  sampleRateHz: number;
  /** Interleaved channels; 1 for mono. */
  channels: number;
}

/** A voice an engine offers out of the box (an engine preset, not a cloned voice). */
export interface EngineVoice {
  /** Stable id used in requests, e.g. `en-us`. */
  id: string;
  /** Human-readable name. */
  name: string;
  /** BCP-47 language tags the voice speaks. */
  languages: string[];
  /** `female`, `male` or empty when the engine does not say. */
  gender: string;
}

/** What an engine can do; reported to the gateway in the agent's hello. */
export interface EngineInfo {
  /** Engine id, e.g. `espeak-ng`. */
  id: string;
  /** Engine version string. */
  version: string;
  /** Model family this engine runs (clone prompts are tied to it), e.g. `espeak-ng`. */
  modelFamily: string;
  /** Model size within the family, e.g. `1.7b`; empty when not meaningful. */
  modelSize: string;
  /** Output format of {@link TtsEngine.synthesize}. */
  format: PcmFormat;
  /** Preset voices. */
  voices: EngineVoice[];
  /** Whether `speed` in a request changes the rate of speech. */
  supportsSpeed: boolean;
  /**
   * Whether the engine makes clone prompts ({@link TtsEngine.createClonePrompt}) and speaks with
   * them ({@link EngineSynthesisRequest.clonePrompt}). Prompts only fit the model family and size
   * that made them.
   */
  supportsCloning?: boolean;
  /**
   * Whether the engine speaks at all. Engines that only run a language model or classify audio
   * say `false`; synthesis is never routed to them. @default true
   */
  speaks?: boolean;
  /** Language models {@link TtsEngine.generate} runs, by the names callers pass as `model`. */
  textModels?: readonly string[];
  /** What {@link TtsEngine.analyze} measures; empty or absent means the engine cannot analyze. */
  analysisKinds?: readonly EngineAnalysisKind[];
  /**
   * Synthesis modes besides plain speech, chosen with `params.mode`: `voice_design` speaks with a
   * voice made from the instructions (FEATURE_VOICE_DESIGN).
   */
  modes?: readonly "voice_design"[];
}

/**
 * A measurement an engine can make of audio: `basic` (duration, loudness), `pitch` (f0), `gender`
 * and `age` (speaker classifiers).
 */
export type EngineAnalysisKind = "basic" | "pitch" | "gender" | "age";

/** One turn of a conversation handed to a language model. */
export interface EngineChatMessage {
  /** `system`, `user` or `assistant`. */
  role: string;
  /** Text of the turn. */
  content: string;
}

/** A text generation as an engine sees it (already checked by the gateway). */
export interface EngineGenerateRequest {
  /** Model to run; one of {@link EngineInfo.textModels}, or empty for the engine's first. */
  model: string;
  /** The conversation; never empty. */
  messages: readonly EngineChatMessage[];
  /** Most tokens to generate; 0 means the server's default. */
  maxTokens: number;
  /** Sampling temperature; undefined means the model's default. */
  temperature?: number;
  /** Nucleus sampling; undefined means the model's default. */
  topP?: number;
  /** Stop sequences. */
  stop: readonly string[];
}

/** A piece of generated text; the last piece carries `finishReason` and token counts. */
export interface EngineTextDelta {
  /** Next piece of text; may be empty on the last piece. */
  text: string;
  /** Why generation stopped, on the last piece: `stop`, `length`, … */
  finishReason?: string;
  /** Model that answered, when the server says. */
  model?: string;
  /** Prompt tokens, when the server counts them. */
  promptTokens?: number;
  /** Completion tokens, when the server counts them. */
  completionTokens?: number;
}

/** Audio to measure, as the gateway sent it to the agent. */
export interface EngineAnalyzeRequest {
  /** The audio bytes (a container such as WAV or MP3). */
  audio: Uint8Array;
  /** Its MIME type, e.g. `audio/wav`; empty when unknown. */
  contentType: string;
  /** What to measure; empty means everything the engine can. */
  kinds: readonly EngineAnalysisKind[];
}

/** What an engine measured; fields it could not measure are left out. */
export interface EngineAnalysis {
  /** Length of the audio, in ms. */
  durationMs?: number;
  /** Integrated loudness, LUFS. */
  loudnessLufs?: number;
  /** Median fundamental frequency of voiced frames, in Hz. */
  medianF0Hz?: number;
  /** Estimated speaker gender. */
  gender?: "female" | "male" | "neutral";
  /** Confidence of `gender`, 0..1. */
  genderConfidence?: number;
  /** Estimated speaker age, in years. */
  ageYears?: number;
  /** Confidence of `ageYears`, 0..1. */
  ageConfidence?: number;
  /** Free-form extra figures the engine measured (name → value), e.g. `f0_hz_p10`. */
  features?: Readonly<Record<string, number | string>>;
}

/** A clone prompt handed to an engine: the bytes its `createClonePrompt` produced earlier. */
export interface EngineClonePrompt {
  /** sha256 of `bytes`, lowercase hex (already verified by the agent). */
  digest: string;
  /** The prompt as the engine made it. */
  bytes: Uint8Array;
}

/** Reference audio to clone a voice from. */
export interface EngineCloneRequest {
  /** Reference recording; the gateway checked its type (magic bytes), size and duration. */
  referenceAudio: Uint8Array;
  /** MIME type found by the gateway: `audio/wav`, `audio/mpeg`, `audio/flac` or `audio/ogg`. */
  contentType: string;
  /** Transcript of the reference, empty when unknown. */
  referenceText: string;
  /** BCP-47 language of the reference, empty when unknown. */
  language: string;
}

/** A clone prompt as an engine returns it. */
export interface EngineClonePromptResult {
  /** Opaque prompt bytes; stored by the gateway, handed back in {@link EngineClonePrompt}. */
  prompt: Uint8Array;
  /** MIME type of the prompt bytes, e.g. `application/json` or `application/octet-stream`. */
  contentType: string;
}

/** One synthesis request as an engine sees it (already validated by the gateway and agent). */
export interface EngineSynthesisRequest {
  /** Text to speak; never empty. */
  text: string;
  /** Preset voice id from {@link EngineInfo.voices}; empty means the engine default. */
  voiceId: string;
  /** Rate multiplier, 1 = normal; engines clamp to what they support. */
  speed: number;
  /** Free-form style instructions for engines that take them; others ignore it. */
  instructions: string;
  /** Speak with this cloned voice instead of `voiceId` (engines with `supportsCloning`). */
  clonePrompt?: EngineClonePrompt;
  /** Engine-specific settings from `SynthesizeRequest.params`; engines ignore keys not theirs. */
  params?: Readonly<Record<string, string>>;
  /** BCP-47 language of the text; empty lets the engine decide. */
  language?: string;
  /**
   * Whether to time the words ({@link EngineAudioChunk.words}); engines that cannot ignore it.
   * @default false
   */
  wordTimings?: boolean;
}

/** When one word of the request's text is heard. */
export interface EngineWordTiming {
  /** The word as written, without the punctuation around it. */
  word: string;
  /** Start, in ms from the start of the call's audio. */
  startMs: number;
  /** End, in ms from the start of the call's audio; never before `startMs`. */
  endMs: number;
  /** Where the word starts in the request's text, in UTF-16 code units. */
  textOffset: number;
}

/** A piece of synthesized audio. */
export interface EngineAudioChunk {
  /**
   * Raw PCM in `format` (else the engine's {@link EngineInfo.format}); length is a whole number of
   * frames.
   */
  pcm: Uint8Array;
  /**
   * Format of this call's audio when the model server said it (a WAV header), overriding
   * {@link EngineInfo.format}. Only the first chunk's counts; later chunks must not change it.
   */
  format?: PcmFormat;
  /**
   * Timings of the words whose audio ends in this chunk or before, in order (only when the request
   * asked for `wordTimings` and the engine can time words).
   */
  words?: readonly EngineWordTiming[];
}

/**
 * A text-to-speech engine.
 *
 * `synthesize` yields audio as it is produced (sentence by sentence or finer) so the first bytes can
 * leave before the whole text is done, and stops promptly when `signal` aborts (throwing the abort
 * reason). Implementations must not block the event loop for long: an agent also answers heartbeats.
 */
export interface TtsEngine {
  /** Static description of the engine. */
  readonly info: EngineInfo;
  /** Streams PCM for `request`. */
  synthesize(request: EngineSynthesisRequest, signal: AbortSignal): AsyncIterable<EngineAudioChunk>;
  /**
   * Makes a clone prompt from reference audio (only engines with `supportsCloning`). Throws
   * `EngineInputError` for audio it cannot use, so the caller gets INVALID_ARGUMENT.
   */
  createClonePrompt?(
    request: EngineCloneRequest,
    signal: AbortSignal,
  ): Promise<EngineClonePromptResult>;
  /**
   * Runs a language model (engines with {@link EngineInfo.textModels}), yielding text as it is
   * produced; stops promptly (closing the model server's request) when `signal` aborts.
   */
  generate?(request: EngineGenerateRequest, signal: AbortSignal): AsyncIterable<EngineTextDelta>;
  /**
   * Reads the GPUs of the host the engine's model server runs on (a node that reports them, like
   * the Tinybox node's `/v1/metrics`); agents report it in heartbeats instead of `nvidia-smi`.
   */
  gpuReport?(signal: AbortSignal): Promise<GpuReport>;
  /** Measures audio (engines with {@link EngineInfo.analysisKinds}). */
  analyze?(request: EngineAnalyzeRequest, signal: AbortSignal): Promise<EngineAnalysis>;
  /** Releases workers and memory; idempotent. */
  close(): Promise<void>;
}

/** One GPU as a host reports it; figures it does not know are left out. */
export interface GpuInfo {
  /** Index on the host. */
  index: number;
  /** Model name, e.g. `NVIDIA GeForce RTX 4090`. */
  name: string;
  /** Utilisation, 0..100 %. */
  utilizationPercent?: number;
  /** Memory used, in MiB. */
  memoryUsedMib?: number;
  /** Memory in all, in MiB. */
  memoryTotalMib?: number;
  /** Power draw, in W. */
  powerWatts?: number;
  /** Temperature, in °C. */
  temperatureC?: number;
}

/** A process on a host, as its GPU report lists it. */
export interface GpuProcessInfo {
  /** Process id. */
  pid: number;
  /** Process name. */
  name: string;
  /** GPU memory it holds, in MiB. */
  gpuMemoryMib?: number;
  /** CPU use, %. */
  cpuPercent?: number;
}

/** The GPUs of a host and its top processes. */
export interface GpuReport {
  /** Every GPU. */
  gpus: GpuInfo[];
  /** Top processes (by GPU memory or CPU). */
  processes: GpuProcessInfo[];
}
