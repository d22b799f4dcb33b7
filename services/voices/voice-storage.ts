import type { AnalysisKind, AudioAnalysis } from "../../gen/voxgate/v1/analysis_pb.js";
import type { ReferenceAudioStore } from "./reference-audio-store.js";
import type { VoiceRepository } from "./voice-repository.js";

/** Model of a clone prompt: family and size (size empty when not meaningful). */
export interface PromptModel {
  /** Model family, e.g. `espeak-ng`. */
  family: string;
  /** Size within the family, e.g. `1.7b`. */
  size: string;
}

/** What voices need to know about a stored clone prompt. */
export interface StoredPrompt {
  /** Lowercase hex sha256 of the bytes. */
  digest: string;
  /** Size in bytes. */
  sizeBytes: number;
  /** Model that made it. */
  model: PromptModel;
}

/** Metadata stored with a clone prompt. */
export interface PromptPutMetadata {
  /** Name of the voice it was made for. */
  name: string;
  /** Engine that made it. */
  engine: string;
  /** Model that made it. */
  model: PromptModel;
  /** Transcript of the reference audio. */
  referenceText: string;
  /** MIME type of the prompt bytes. */
  contentType: string;
}

/**
 * The prompt store as the voice catalog uses it: content-addressed, integrity-checked. The gateway
 * binds it to the real prompt store; tests may pass a small fake.
 */
export interface VoicePromptStore {
  /** Stores a prompt (a no-op for bytes already stored) and describes it. */
  put(bytes: Uint8Array, metadata: PromptPutMetadata, signal?: AbortSignal): Promise<StoredPrompt>;
  /** Describes a stored prompt, or undefined when there is none with that digest. */
  stat(digest: string): Promise<StoredPrompt | undefined>;
  /** Deletes a prompt; missing ones are fine. */
  delete(digest: string): Promise<void>;
}

/** What an inspection of uploaded audio found. */
export interface InspectedAudio {
  /** MIME type found by magic bytes: `audio/wav`, `audio/mpeg`, `audio/flac` or `audio/ogg`. */
  contentType: string;
  /** Duration, in ms (from the container's header where it says). */
  durationMs: number;
}

/** Audio checks and measurements the voice catalog runs on the gateway. */
export interface VoiceAudioTools {
  /**
   * Checks uploaded audio by its magic bytes and finds its duration.
   * @throws ConnectError INVALID_ARGUMENT for audio that is not WAV, MP3, FLAC or OGG, or that is
   *   longer than the duration cap (the message names the setting).
   */
  inspect(audio: Uint8Array, declaredContentType: string): Promise<InspectedAudio>;
  /** Measures audio (duration, loudness, pitch, …) on the gateway. */
  analyze(
    audio: Uint8Array,
    contentType: string,
    kinds: readonly AnalysisKind[],
    signal: AbortSignal,
  ): Promise<AudioAnalysis>;
}

/** Where cloned voices and their bytes live. */
export interface VoiceStorage {
  /** Voice rows. */
  repository: VoiceRepository;
  /** Clone prompts. */
  prompts: VoicePromptStore;
  /** Reference recordings. */
  references: ReferenceAudioStore;
}

/** Limits on uploaded audio (reference recordings and audio to analyze). */
export interface VoiceLimits {
  /** Largest upload, in bytes (`VOXGATE_MAX_REFERENCE_BYTES`). */
  maxReferenceBytes: number;
  /** Longest upload, in seconds (`VOXGATE_MAX_REFERENCE_SECONDS`). */
  maxReferenceSeconds: number;
  /** Largest clone prompt a backend may return, in bytes (`VOXGATE_MAX_PROMPT_BYTES`). */
  maxPromptBytes: number;
}
