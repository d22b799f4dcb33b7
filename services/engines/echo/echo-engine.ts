import { setTimeout as sleep } from "node:timers/promises";
import { EngineInputError } from "../engine-errors.js";
import type {
  EngineAudioChunk,
  EngineInfo,
  EngineSynthesisRequest,
  TtsEngine,
} from "../tts-engine.js";
import { ECHO_PATTERN_BYTES, fillEchoBytes } from "./echo-pattern.js";

/** Engine id of the echo engine. */
export const ECHO_ENGINE_ID = "echo";

/** Request params the echo engine reads (`SynthesizeRequest.params`); other `echo.*` keys fail. */
export const ECHO_PARAMS = {
  /** Answer size in bytes (even: whole 16-bit frames). */
  bytes: "echo.bytes",
  /** Size of each yielded chunk in bytes (even). */
  chunkBytes: "echo.chunk_bytes",
  /** Pause after the first chunk, in ms: holds a stream open (memory and concurrency benches). */
  holdMs: "echo.hold_ms",
} as const;

/** Options of {@link createEchoEngine}. */
export interface EchoEngineOptions {
  /** Answer size when a request names none, in bytes. @default 1_048_576 */
  defaultBytes?: number;
  /** Chunk size when a request names none, in bytes. @default 16_384 */
  defaultChunkBytes?: number;
  /** Largest answer a request may ask for, in bytes. @default 67_108_864 */
  maxBytes?: number;
  /** Largest chunk a request may ask for, in bytes. @default 1_048_576 */
  maxChunkBytes?: number;
  /** Longest `echo.hold_ms` a request may ask for, in ms. @default 60_000 */
  maxHoldMs?: number;
  /** Sample rate the answer claims to have, in Hz. @default 24_000 */
  sampleRateHz?: number;
}

/**
 * Creates the echo engine: a synthetic engine that streams a deterministic byte pattern
 * ({@link fillEchoBytes}) of a requested size in chunks of a requested size, as fast as the
 * consumer takes them. It exists so benchmarks measure the relay, not a model; the text is ignored.
 *
 * Per request, `params` may set `echo.bytes`, `echo.chunk_bytes` and `echo.hold_ms`; each is
 * checked against this engine's caps and a bad value throws {@link EngineInputError}.
 */
export function createEchoEngine(options: EchoEngineOptions = {}): TtsEngine {
  const defaultBytes = options.defaultBytes ?? 1024 * 1024;
  const defaultChunkBytes = options.defaultChunkBytes ?? 16 * 1024;
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  const maxChunkBytes = options.maxChunkBytes ?? 1024 * 1024;
  const maxHoldMs = options.maxHoldMs ?? 60_000;
  const info: EngineInfo = {
    id: ECHO_ENGINE_ID,
    version: "1",
    modelFamily: ECHO_ENGINE_ID,
    modelSize: "",
    format: { sampleRateHz: options.sampleRateHz ?? 24_000, channels: 1 },
    voices: [{ id: "echo", name: "Echo (synthetic bytes)", languages: ["und"], gender: "" }],
    supportsSpeed: false,
  };
  let closed = false;

  const readInt = (
    params: Readonly<Record<string, string>>,
    key: string,
    fallback: number,
    min: number,
    max: number,
  ): number => {
    const raw = params[key];
    if (raw === undefined) return fallback;
    const value = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(value >= min && value <= max)) {
      throw new EngineInputError(
        ECHO_ENGINE_ID,
        `param ${key}=${JSON.stringify(raw.slice(0, 32))} must be an integer in ${min}..${max}`,
      );
    }
    return value;
  };

  async function* synthesize(
    request: EngineSynthesisRequest,
    signal: AbortSignal,
  ): AsyncIterable<EngineAudioChunk> {
    if (closed) throw new EngineInputError(ECHO_ENGINE_ID, "the echo engine is closed");
    const params = request.params ?? {};
    const known = new Set<string>(Object.values(ECHO_PARAMS));
    for (const key of Object.keys(params)) {
      if (key.startsWith("echo.") && !known.has(key)) {
        throw new EngineInputError(
          ECHO_ENGINE_ID,
          `unknown param ${JSON.stringify(key.slice(0, 64))}; the echo engine reads ${[...known].join(", ")}`,
        );
      }
    }
    const bytes = readInt(params, ECHO_PARAMS.bytes, defaultBytes, 0, maxBytes);
    const chunkBytes = readInt(params, ECHO_PARAMS.chunkBytes, defaultChunkBytes, 2, maxChunkBytes);
    const holdMs = readInt(params, ECHO_PARAMS.holdMs, 0, 0, maxHoldMs);
    if (bytes % 2 !== 0 || chunkBytes % 2 !== 0) {
      throw new EngineInputError(
        ECHO_ENGINE_ID,
        `${ECHO_PARAMS.bytes} and ${ECHO_PARAMS.chunkBytes} must be even (16-bit frames)`,
      );
    }
    // One source long enough for any chunk at any pattern phase: chunks are views into it, so a
    // 10 MB answer costs no per-chunk allocation or fill. Consumers serialize (copy) what they get.
    const source = fillEchoBytes(
      new Uint8Array(Math.min(bytes, chunkBytes) + ECHO_PATTERN_BYTES),
      0,
    );
    for (let offset = 0; offset < bytes; offset += chunkBytes) {
      signal.throwIfAborted();
      const length = Math.min(chunkBytes, bytes - offset);
      const phase = offset % ECHO_PATTERN_BYTES;
      yield { pcm: source.subarray(phase, phase + length) };
      if (offset === 0 && holdMs > 0) {
        // The contract is to throw the abort reason itself, not the timer's AbortError.
        await sleep(holdMs, undefined, { signal }).catch(() => signal.throwIfAborted());
      }
    }
  }

  return {
    info,
    synthesize,
    async close() {
      closed = true;
    },
  };
}
