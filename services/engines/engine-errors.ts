/**
 * Typed errors engines throw, one class per way a caller must react, so the RPC edge can map each
 * to a status code without reading messages.
 */

/**
 * Thrown when an engine cannot run at all: its package is not installed, its workers died, or it
 * has been closed. Retrying on the same engine will not help.
 */
export class EngineUnavailableError extends Error {
  override name = "EngineUnavailableError";
  /** Engine id, e.g. `espeak-ng`. */
  readonly engineId: string;

  /** Creates the error; `options.cause` keeps the underlying failure. */
  constructor(engineId: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.engineId = engineId;
  }
}

/** Reports whether `error` is an {@link EngineUnavailableError}. */
export function isEngineUnavailableError(error: unknown): error is EngineUnavailableError {
  return error instanceof EngineUnavailableError;
}

/** Thrown when a request names a voice the engine does not offer. */
export class UnknownVoiceError extends Error {
  override name = "UnknownVoiceError";
  /** Engine id, e.g. `espeak-ng`. */
  readonly engineId: string;
  /** The voice id that was asked for. */
  readonly voiceId: string;
  /** A few valid ids, closest first; not the full list. */
  readonly suggestedVoiceIds: string[];

  /** Creates the error; the message lists `suggestedVoiceIds`. */
  constructor(engineId: string, voiceId: string, suggestedVoiceIds: string[]) {
    super(
      `engine ${engineId} has no voice ${JSON.stringify(voiceId)}; valid ids include ${suggestedVoiceIds.join(", ")}`,
    );
    this.engineId = engineId;
    this.voiceId = voiceId;
    this.suggestedVoiceIds = suggestedVoiceIds;
  }
}

/** Reports whether `error` is an {@link UnknownVoiceError}. */
export function isUnknownVoiceError(error: unknown): error is UnknownVoiceError {
  return error instanceof UnknownVoiceError;
}

/**
 * Thrown before any audio when an engine's queue is full; the call can be retried later or on
 * another machine.
 */
export class EngineOverloadedError extends Error {
  override name = "EngineOverloadedError";
  /** Engine id, e.g. `espeak-ng`. */
  readonly engineId: string;
  /** Queue limit that was reached, in sentences. */
  readonly maxQueue: number;

  /** Creates the error. */
  constructor(engineId: string, maxQueue: number) {
    super(`engine ${engineId} is overloaded: ${maxQueue} sentences are already waiting`);
    this.engineId = engineId;
    this.maxQueue = maxQueue;
  }
}

/** Reports whether `error` is an {@link EngineOverloadedError}. */
export function isEngineOverloadedError(error: unknown): error is EngineOverloadedError {
  return error instanceof EngineOverloadedError;
}

/** Thrown when an engine that is up failed to synthesize one piece of text. */
export class SynthesisFailedError extends Error {
  override name = "SynthesisFailedError";
  /** Engine id, e.g. `espeak-ng`. */
  readonly engineId: string;

  /** Creates the error; `options.cause` keeps the underlying failure. */
  constructor(engineId: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.engineId = engineId;
  }
}

/** Reports whether `error` is a {@link SynthesisFailedError}. */
export function isSynthesisFailedError(error: unknown): error is SynthesisFailedError {
  return error instanceof SynthesisFailedError;
}

/**
 * Thrown when the input itself is unusable (reference audio the engine cannot read, a clone prompt
 * made by another model); retrying elsewhere will not help, the caller gets INVALID_ARGUMENT.
 */
export class EngineInputError extends Error {
  override name = "EngineInputError";
  /** Engine id, e.g. `espeak-ng`. */
  readonly engineId: string;

  /** Creates the error; the message should say what is wrong and what would work. */
  constructor(engineId: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.engineId = engineId;
  }
}

/** Reports whether `error` is an {@link EngineInputError}. */
export function isEngineInputError(error: unknown): error is EngineInputError {
  return error instanceof EngineInputError;
}
