/**
 * The parts every model-server engine shares: connecting to the server (HTTP client and voice
 * discovery) and tracking in-flight calls so `close()` can abort them.
 */
import type { Logger } from "pino";
import { EngineUnavailableError } from "../engine-errors.js";
import type { EngineVoice } from "../tts-engine.js";
import { createModelServerClient, type ModelServerClient } from "./model-server-client.js";
import { type EngineErrorContext, toEngineError } from "./model-server-errors.js";
import { discoverVoices } from "./voice-discovery.js";

/** Connection options every model-server engine takes. */
export interface ModelServerConnectionOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:9700`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`; never logged. */
  apiKey?: string;
  /** Sample rate of the server's audio, in Hz. @default 24000 */
  sampleRateHz?: number;
  /** Voices to offer when the server has no voice list. */
  voices?: readonly string[];
  /** Longest wait for an answer to start and between two pieces of it, in ms. @default 120000 */
  timeoutMs?: number;
  /** Longest wait for the voice list at start, in ms. @default 10000 */
  discoveryTimeoutMs?: number;
  /** Largest answer of one request, in bytes. @default 67108864 */
  maxResponseBytes?: number;
  /** Logger; the engine logs through a child with its `component`. */
  log?: Logger;
  /** The fetch to use (tests). @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** Where a server lists its voices and the names used when it does not (see `wire-fields.ts`). */
export interface VoiceListWire {
  /** Path of the voice list. */
  voicesPath: string;
  /** Fields that may hold the array. */
  voicesList: readonly string[];
  /** Fields that may hold a voice's id. */
  voiceId: readonly string[];
  /** Voices used when neither the server nor the operator names any. */
  builtInVoices: readonly string[];
}

/** What {@link connectModelServer} needs besides the options. */
export interface ConnectModelServerSpec {
  /** Engine id, used in errors. */
  engineId: string;
  /** `component` of the engine's child logger. */
  component: string;
  /** The server's voice-list wire format. */
  wire: VoiceListWire;
  /** Extra fields of the "engine ready" log line (after `url`). */
  readyLog?: Record<string, unknown>;
}

/** A connected model server, as returned by {@link connectModelServer}. */
export interface ModelServerConnection {
  /** HTTP client of the server. */
  client: ModelServerClient;
  /** The engine's child logger, if a logger was given. */
  log: Logger | undefined;
  /** Validated sample rate of the server's audio, in Hz. */
  sampleRateHz: number;
  /** The voices found; never empty. */
  voices: EngineVoice[];
  /** Ids of `voices`, in order. */
  voiceIds: string[];
}

/**
 * Validates the options, creates the HTTP client and discovers the server's voices (the server's
 * list, else `options.voices`, else `spec.wire.builtInVoices`), then logs "engine ready". The
 * server does not have to be up. Throws `RangeError` when `sampleRateHz` is not an integer in
 * 8000..192000.
 */
export async function connectModelServer(
  options: ModelServerConnectionOptions,
  spec: ConnectModelServerSpec,
): Promise<ModelServerConnection> {
  const { engineId, wire } = spec;
  const sampleRateHz = options.sampleRateHz ?? 24_000;
  if (!Number.isInteger(sampleRateHz) || sampleRateHz < 8000 || sampleRateHz > 192_000) {
    throw new RangeError(`sampleRateHz must be an integer in 8000..192000, got ${sampleRateHz}`);
  }
  const log = options.log?.child({ component: spec.component });
  const client = createModelServerClient({
    engineId,
    baseUrl: options.baseUrl,
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.maxResponseBytes === undefined
      ? {}
      : { maxResponseBytes: options.maxResponseBytes }),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const { voices, source } = await discoverVoices({
    client,
    path: wire.voicesPath,
    listFields: wire.voicesList,
    idFields: wire.voiceId,
    configured: options.voices ?? [],
    builtIn: wire.builtInVoices,
    timeoutMs: options.discoveryTimeoutMs ?? 10_000,
    log,
  });
  const voiceIds = voices.map((v) => v.id);
  log?.info(
    { url: client.baseUrl, ...spec.readyLog, voices: voiceIds.length, source },
    "engine ready",
  );
  return { client, log, sampleRateHz, voices, voiceIds };
}

/** The in-flight calls of one engine, as returned by {@link createEngineCalls}. */
export interface EngineCalls {
  /** Throws `EngineUnavailableError` ("engine is closed") once {@link EngineCalls.close} ran. */
  assertOpen(): void;
  /**
   * Runs `work` with a signal that aborts with `signal` or when the engine closes. A failure
   * becomes `signal.reason` if the caller aborted, else `toEngineError(err, context)`.
   */
  run<T>(
    signal: AbortSignal,
    context: EngineErrorContext,
    work: (inner: AbortSignal) => Promise<T>,
  ): Promise<T>;
  /** Like {@link EngineCalls.run} for a stream; the call stays tracked until the stream ends. */
  stream<T>(
    signal: AbortSignal,
    context: EngineErrorContext,
    work: (inner: AbortSignal) => AsyncIterable<T>,
  ): AsyncIterable<T>;
  /** Refuses new calls and aborts the running ones with `EngineUnavailableError`. Idempotent. */
  close(): void;
}

/** Creates the call tracker of the engine `engineId`. */
export function createEngineCalls(engineId: string): EngineCalls {
  const running = new Set<AbortController>();
  let closed = false;

  function assertOpen(): void {
    if (closed) throw new EngineUnavailableError(engineId, "engine is closed");
  }

  // Starts tracking a call; the returned function stops it.
  function track(signal: AbortSignal): { inner: AbortSignal; done: () => void } {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    running.add(controller);
    return {
      inner: controller.signal,
      done: () => {
        signal.removeEventListener("abort", onAbort);
        running.delete(controller);
      },
    };
  }

  function translate(err: unknown, signal: AbortSignal, context: EngineErrorContext): unknown {
    return signal.aborted ? signal.reason : toEngineError(err, context);
  }

  return {
    assertOpen,
    async run(signal, context, work) {
      assertOpen();
      const call = track(signal);
      try {
        return await work(call.inner);
      } catch (err) {
        throw translate(err, signal, context);
      } finally {
        call.done();
      }
    },
    async *stream(signal, context, work) {
      assertOpen();
      const call = track(signal);
      try {
        yield* work(call.inner);
      } catch (err) {
        throw translate(err, signal, context);
      } finally {
        call.done();
      }
    },
    close() {
      closed = true;
      for (const controller of running) {
        controller.abort(new EngineUnavailableError(engineId, "engine is closed"));
      }
    },
  };
}
