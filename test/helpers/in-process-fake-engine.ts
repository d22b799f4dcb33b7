/**
 * Test helper: a fake {@link TtsEngine} for in-process tests. Per sentence it yields a fixed number
 * of chunks of deterministic PCM (a counter pattern seeded by the text, so reordering, loss,
 * duplication or audio from another call shows),
 * waiting a configurable delay before each chunk, and records every call: the request, when it
 * started and finished, what it produced and whether (and when) its abort signal fired.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type {
  EngineAudioChunk,
  EngineInfo,
  EngineSynthesisRequest,
  TtsEngine,
} from "../../services/engines/tts-engine.js";

/** Options of {@link createInProcessFakeEngine}. */
export interface InProcessFakeEngineOptions {
  /** Engine id. @default "fake-tts" */
  id?: string;
  /** Output sample rate. @default 16_000 */
  sampleRateHz?: number;
  /** Chunks yielded per sentence. @default 3 */
  chunksPerSentence?: number;
  /** Samples (frames, mono) per chunk. @default 160 */
  samplesPerChunk?: number;
  /** Wait before each chunk, in ms. @default 20 */
  chunkDelayMs?: number;
}

/** One recorded synthesize call. */
export interface FakeEngineCall {
  /** The request as the engine saw it. */
  request: EngineSynthesisRequest;
  /** `performance.now()` when the call started. */
  startedAt: number;
  /** `performance.now()` when the last chunk was yielded and the call returned normally. */
  finishedAt: number | undefined;
  /** Whether the call's abort signal fired. */
  aborted: boolean;
  /** `performance.now()` when the abort signal fired. */
  abortedAt: number | undefined;
  /** Every chunk yielded so far, in order. */
  chunks: Uint8Array[];
}

/** The fake engine plus what it recorded. */
export interface InProcessFakeEngine extends TtsEngine {
  /** Every call, in order. */
  readonly calls: readonly FakeEngineCall[];
  /** Whether {@link TtsEngine.close} was called. */
  readonly closed: boolean;
  /** The PCM the engine produces for `text`, all chunks concatenated. */
  expectedPcm(text: string): Uint8Array;
  /** Number of chunks the engine yields for `text`. */
  chunkCount(text: string): number;
  /** Time a call for `text` takes at least, in ms. */
  durationMs(text: string): number;
}

/** Splits like a simple engine: after `.`, `!` or `?` followed by whitespace. */
function sentencesOf(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** A small deterministic hash of `text` in [0, 65536). */
function seedOf(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) % 65_536;
  return hash;
}

/** Creates a fake engine. */
export function createInProcessFakeEngine(
  options: InProcessFakeEngineOptions = {},
): InProcessFakeEngine {
  const id = options.id ?? "fake-tts";
  const sampleRateHz = options.sampleRateHz ?? 16_000;
  const chunksPerSentence = options.chunksPerSentence ?? 3;
  const samplesPerChunk = options.samplesPerChunk ?? 160;
  const chunkDelayMs = options.chunkDelayMs ?? 20;
  const calls: FakeEngineCall[] = [];
  let closed = false;

  /**
   * Chunk `index` of a call for `text`: sample k of the call is `(seed + k * 7) mod 65536` as a
   * signed int16, with `seed` a hash of the text.
   */
  const chunkAt = (text: string, index: number): Uint8Array => {
    const seed = seedOf(text);
    const pcm = new Uint8Array(samplesPerChunk * 2);
    const view = new DataView(pcm.buffer);
    for (let i = 0; i < samplesPerChunk; i++) {
      const k = index * samplesPerChunk + i;
      view.setInt16(i * 2, ((seed + k * 7) % 65_536) - 32_768, true);
    }
    return pcm;
  };

  const chunkCount = (text: string) => sentencesOf(text).length * chunksPerSentence;

  const info: EngineInfo = {
    id,
    version: "0.0.0-test",
    modelFamily: id,
    modelSize: "",
    format: { sampleRateHz, channels: 1 },
    voices: [{ id: "fake-voice", name: "Fake voice", languages: ["en"], gender: "" }],
    supportsSpeed: false,
  };

  return {
    info,
    get calls() {
      return calls;
    },
    get closed() {
      return closed;
    },
    chunkCount,
    durationMs: (text) => chunkCount(text) * chunkDelayMs,
    expectedPcm(text) {
      const n = chunkCount(text);
      const out = new Uint8Array(n * samplesPerChunk * 2);
      for (let index = 0; index < n; index++) {
        out.set(chunkAt(text, index), index * samplesPerChunk * 2);
      }
      return out;
    },
    async *synthesize(request, signal): AsyncGenerator<EngineAudioChunk> {
      const call: FakeEngineCall = {
        request: { ...request },
        startedAt: performance.now(),
        finishedAt: undefined,
        aborted: signal.aborted,
        abortedAt: signal.aborted ? performance.now() : undefined,
        chunks: [],
      };
      calls.push(call);
      signal.addEventListener(
        "abort",
        () => {
          call.aborted = true;
          call.abortedAt = performance.now();
        },
        { once: true },
      );
      const total = chunkCount(request.text);
      for (let index = 0; index < total; index++) {
        // Rejects with an AbortError when the signal fires; the contract wants the abort reason.
        await sleep(chunkDelayMs, undefined, { signal }).catch(() => {
          throw signal.reason;
        });
        signal.throwIfAborted();
        const pcm = chunkAt(request.text, index);
        call.chunks.push(pcm);
        yield { pcm };
      }
      call.finishedAt = performance.now();
    },
    async close() {
      closed = true;
    },
  };
}
