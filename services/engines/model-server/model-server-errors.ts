/**
 * Maps a model server's HTTP failures onto the engine error classes, so the agent reacts to a GPU
 * server's answer the same way it reacts to a local engine's failure.
 */
import {
  EngineInputError,
  EngineOverloadedError,
  EngineUnavailableError,
  SynthesisFailedError,
  UnknownVoiceError,
} from "../engine-errors.js";

/** Longest piece of a server's error text kept in our messages, in characters. */
export const MAX_SERVER_MESSAGE_CHARS = 300;

/** Environment variables named in error messages, so operators know which setting to change. */
export const MODEL_SERVER_SETTING_ENV = {
  url: "VOXGATE_AGENT_ENGINE_URL",
  apiKey: "VOXGATE_AGENT_ENGINE_API_KEY",
  timeoutMs: "VOXGATE_AGENT_ENGINE_TIMEOUT_MS",
  maxResponseBytes: "VOXGATE_AGENT_ENGINE_MAX_RESPONSE_BYTES",
  sampleRateHz: "VOXGATE_AGENT_ENGINE_SAMPLE_RATE_HZ",
} as const;

/**
 * A model server answered with a status other than 2xx. Engines turn it into an engine error with
 * {@link toEngineError}; it never leaves an engine.
 */
export class ModelServerHttpError extends Error {
  override name = "ModelServerHttpError";
  /** HTTP status. */
  readonly status: number;
  /** The server's own error text, truncated and with the API key removed; may be empty. */
  readonly serverMessage: string;

  /** Creates the error. */
  constructor(operation: string, status: number, serverMessage: string) {
    super(`${operation} answered HTTP ${status}${serverMessage ? `: ${serverMessage}` : ""}`);
    this.status = status;
    this.serverMessage = serverMessage;
  }
}

/** Reports whether `error` is a {@link ModelServerHttpError}. */
export function isModelServerHttpError(error: unknown): error is ModelServerHttpError {
  return error instanceof ModelServerHttpError;
}

/**
 * {@link EngineOverloadedError} for a model server that said 429: the server has its own queue,
 * so the message says what it answered instead of counting sentences.
 */
export class ModelServerOverloadedError extends EngineOverloadedError {
  override name = "ModelServerOverloadedError";

  /** Creates the error with the server's answer as its message. */
  constructor(engineId: string, message: string) {
    super(engineId, 0);
    this.message = message;
  }
}

/** What {@link toEngineError} needs to know about the call that failed. */
export interface EngineErrorContext {
  /** Engine id, e.g. `openai-http`. */
  engineId: string;
  /** Voice the call asked for; empty for calls without one. */
  voiceId: string;
  /** Voice ids the engine offers, for the suggestions of {@link UnknownVoiceError}. */
  knownVoiceIds: readonly string[];
  /** Whether the call carried a clone prompt (a 4xx then means the prompt does not fit). */
  withClonePrompt?: boolean;
}

/**
 * Turns a {@link ModelServerHttpError} into the engine error a caller must react to:
 * a 4xx that talks about the voice or speaker → {@link UnknownVoiceError}; 400, 413 and 422 →
 * {@link EngineInputError}; 401/403 → {@link EngineUnavailableError} naming the API key setting;
 * 429 → {@link ModelServerOverloadedError}; 404 (wrong URL), 502, 503 and 504 →
 * {@link EngineUnavailableError}; anything else → {@link SynthesisFailedError}. The server's text
 * is kept in every message. Other errors are returned unchanged.
 */
export function toEngineError(error: unknown, context: EngineErrorContext): unknown {
  if (!isModelServerHttpError(error)) return error;
  const { engineId } = context;
  const { status, serverMessage } = error;
  const said = serverMessage ? `; the model server said: ${serverMessage}` : "";
  const aboutVoice = /\b(voice|speaker)s?\b/i.test(serverMessage);
  if (status >= 400 && status < 500 && aboutVoice && context.voiceId && !context.withClonePrompt) {
    const unknown = new UnknownVoiceError(
      engineId,
      context.voiceId,
      context.knownVoiceIds.slice(0, 8),
    );
    unknown.message += `${said} (HTTP ${status})`;
    return unknown;
  }
  switch (status) {
    case 400:
    case 413:
    case 422:
      return new EngineInputError(
        engineId,
        `the model server refused the request (HTTP ${status})${said}`,
        { cause: error },
      );
    case 401:
    case 403:
      return new EngineUnavailableError(
        engineId,
        `the model server refused the API key (HTTP ${status}); check ${MODEL_SERVER_SETTING_ENV.apiKey}${said}`,
        { cause: error },
      );
    case 404:
    case 405:
      return new EngineUnavailableError(
        engineId,
        `the model server has no such endpoint (HTTP ${status}); check ${MODEL_SERVER_SETTING_ENV.url} and --engine${said}`,
        { cause: error },
      );
    case 429:
      return new ModelServerOverloadedError(
        engineId,
        `the model server is overloaded (HTTP 429)${said}`,
      );
    case 502:
    case 503:
    case 504:
      return new EngineUnavailableError(
        engineId,
        `the model server is unavailable (HTTP ${status})${said}`,
        { cause: error },
      );
    default:
      if (status >= 400 && status < 500 && context.withClonePrompt) {
        return new EngineInputError(
          engineId,
          `the model server cannot use this clone prompt (HTTP ${status})${said}`,
          { cause: error },
        );
      }
      return new SynthesisFailedError(engineId, `the model server failed (HTTP ${status})${said}`, {
        cause: error,
      });
  }
}
