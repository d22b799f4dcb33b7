/**
 * Messages between the espeak-ng engine (main thread) and its worker threads. Types only: the
 * worker module itself is never imported by the main thread.
 */

/** `workerData` each worker starts with. */
export interface EspeakWorkerData {
  /** URL of the worker implementation the plain-JavaScript entry file imports. */
  entryUrl: string;
  /** Module specifier of the espeak-ng Emscripten build. */
  packageName: string;
  /** Whether this worker also reports the engine version and voice table (one worker does). */
  introspect: boolean;
}

/** Work the engine sends to a worker. */
export interface EspeakSynthesizeMessage {
  type: "synthesize";
  /** Engine-wide job id, echoed in the answer. */
  jobId: number;
  /** One sentence; never empty. */
  text: string;
  /** Value passed to espeak-ng `-v`: a listed voice id, for cloned voices with a `+variant`. */
  voice: string;
  /** Value passed to espeak-ng `-s`, already clamped to 80..450. */
  wordsPerMinute: number;
  /** Values passed to `-p` and `-P` (0..99 each) for cloned voices; absent: espeak-ng's 50. */
  prosody?: EspeakProsody;
  /**
   * The sentence's words as written (tokens with their punctuation), when the call asked for word
   * timings: the worker then also times them (`word-alignment.ts`).
   */
  words?: string[];
}

/** Pitch settings of a cloned voice. */
export interface EspeakProsody {
  /** `-p`, pitch adjustment 0..99. */
  pitch: number;
  /** `-P`, pitch range adjustment 0..99. */
  pitchRange: number;
}

/** The worker is ready to synthesize. */
export interface EspeakReadyMessage {
  type: "ready";
  /** Output format, read from the WAV header espeak-ng wrote for a probe sentence. */
  sampleRateHz: number;
  channels: number;
  /** Time from worker start to ready, including Emscripten start-up. */
  startupMs: number;
  /** espeak-ng version (`--version`); only when introspecting. */
  version?: string;
  /** Lines printed by `--voices`; only when introspecting. */
  voiceTable?: string[];
}

/** The espeak-ng package could not be loaded. */
export interface EspeakUnavailableMessage {
  type: "unavailable";
  message: string;
}

/** PCM of one sentence. */
export interface EspeakAudioMessage {
  type: "audio";
  jobId: number;
  /** 16-bit little-endian PCM, WAV header removed; transferred, not copied. */
  pcm: ArrayBuffer;
  /** Time espeak-ng spent on the sentence. */
  synthesisMs: number;
  /**
   * When `words` were sent: each word's start and end in ms from the sentence's first sample,
   * flattened (`[start0, end0, start1, end1, …]`).
   */
  wordSpansMs?: number[];
}

/** espeak-ng failed on one sentence; the worker stays usable. */
export interface EspeakFailedMessage {
  type: "failed";
  jobId: number;
  message: string;
}

/** Everything a worker posts to the engine. */
export type EspeakWorkerMessage =
  | EspeakReadyMessage
  | EspeakUnavailableMessage
  | EspeakAudioMessage
  | EspeakFailedMessage;
