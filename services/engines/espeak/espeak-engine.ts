/**
 * The built-in CPU engine: eSpeak NG compiled to WebAssembly (npm `espeak-ng`, GPL-3.0), run in
 * worker threads so that the GPL code stays out of voxgate's module graph and a sentence's
 * synthesis never blocks the agent's event loop.
 */
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import { analyzeVoiceProfile } from "../../analysis/analyze-audio.js";
import type { PcmAudio } from "../../analysis/audio-analysis.js";
import {
  decodeAudioForAnalysis,
  isAudioDecodeError,
  WAV_CONTENT_TYPES,
} from "../../analysis/decode-audio.js";
import { splitSentences } from "../../audio/sentences.js";
import { TS_WORKER_ENTRY_URL } from "../../worker/ts-worker-entry-url.js";
import {
  EngineInputError,
  EngineOverloadedError,
  EngineUnavailableError,
  SynthesisFailedError,
  UnknownVoiceError,
} from "../engine-errors.js";
import type {
  EngineAudioChunk,
  EngineClonePromptResult,
  EngineCloneRequest,
  EngineInfo,
  EngineSynthesisRequest,
  EngineVoice,
  TtsEngine,
} from "../tts-engine.js";
import {
  createEspeakClonePrompt,
  ESPEAK_CLONE_CONTENT_TYPE,
  encodeEspeakClonePrompt,
  espeakCloneParameters,
  parseEspeakClonePrompt,
} from "./espeak-clone.js";
import type {
  EspeakProsody,
  EspeakReadyMessage,
  EspeakSynthesizeMessage,
  EspeakWorkerData,
  EspeakWorkerMessage,
} from "./espeak-protocol.js";
import { parseEspeakVoiceTable } from "./espeak-voices.js";
import { sentenceWords } from "./word-alignment.js";

const ENGINE_ID = "espeak-ng";
// espeak-ng's default rate; `speed` scales it within the range espeak-ng accepts.
const BASE_WORDS_PER_MINUTE = 175;
const MIN_WORDS_PER_MINUTE = 80;
const MAX_WORDS_PER_MINUTE = 450;
const MAX_SUGGESTED_VOICES = 8;
// A clone needs this much voiced reference audio for a stable median f0.
const MIN_VOICED_REFERENCE_MS = 200;

/** Options of {@link createEspeakEngine}. */
export interface EspeakEngineOptions {
  /**
   * Worker threads, each with its own espeak-ng instance: about 1 s to start and 150-180 MB
   * resident (wasm module, voice data, V8). One sentence runs per worker at a time; more workers
   * serve concurrent calls in parallel.
   * @default 1
   */
  workers?: number;
  /**
   * Sentences waiting for a worker beyond which new calls are refused with
   * `EngineOverloadedError` before producing audio. A call under way is never refused, so the
   * queue can pass this by a few sentences per running call.
   * @default 64
   */
  maxQueue?: number;
  /**
   * Voice used when a request's `voiceId` is empty; must be one espeak-ng lists.
   * @default "en-us"
   */
  defaultVoiceId?: string;
  /**
   * Time a worker may take to load espeak-ng and report ready before start fails.
   * @default 30000
   */
  startTimeoutMs?: number;
  /**
   * Module specifier of the espeak-ng Emscripten build to load in the workers; it must resolve
   * to a file with `espeak-ng.wasm` beside it.
   * @default "espeak-ng"
   */
  packageName?: string;
  /** Logger; the engine logs through `log.child({ component: "espeak-engine" })`. */
  log?: Logger;
}

/** Voice variants a preset voice id may carry after `+` (`en-us+f3`): espeak-ng's classic set. */
export const ESPEAK_VARIANTS: ReadonlySet<string> = new Set([
  "m1",
  "m2",
  "m3",
  "m4",
  "m5",
  "m6",
  "m7",
  "m8",
  "f1",
  "f2",
  "f3",
  "f4",
  "f5",
]);

// A sentence on its way through a worker.
interface Job {
  readonly message: EspeakSynthesizeMessage;
  readonly promise: Promise<SentenceAudio>;
  resolve(audio: SentenceAudio): void;
  reject(err: Error): void;
}

// A sentence's PCM, and its word spans when they were asked for (ms from its first sample).
interface SentenceAudio {
  pcm: Uint8Array;
  wordSpansMs: readonly number[] | undefined;
}

interface WorkerSlot {
  readonly worker: Worker;
  job: Job | undefined;
}

/**
 * `starting`: workers are loading espeak-ng. `running`: serving calls. `closed`: `close()` was
 * called; calls reject with `EngineUnavailableError` and workers are gone or going.
 */
type State = "starting" | "running" | "closed";

/**
 * Starts the espeak-ng engine: spawns `workers` worker threads, each loading the `espeak-ng`
 * package with a dynamic `import()`, and reads the output format, version and voice list from the
 * engine itself. The voice list is read once and kept for the engine's lifetime.
 *
 * `synthesize` splits the text into sentences, synthesizes them in order and yields each
 * sentence's PCM (22050 Hz mono with the npm build) as soon as it is ready, while the next one is
 * already being synthesized. It stops between sentences when `signal` aborts, throwing
 * `signal.reason`; a sentence already in a worker runs to its end (tens of milliseconds) and is
 * dropped. `speed` scales espeak-ng's 175 words per minute, clamped to 80..450; `instructions` are
 * ignored. An empty `voiceId` means `defaultVoiceId`; a listed voice may carry a variant
 * (`en-us+f3`, see {@link ESPEAK_VARIANTS}); an unknown one throws `UnknownVoiceError`.
 *
 * Cloning (`supportsCloning`): `createClonePrompt` reads a WAV reference, measures its pitch and
 * speaking rate (`services/analysis`, in a worker thread for references over 3 s) and returns a
 * small JSON prompt (`voxgate.espeak-clone/1`, see `espeak-clone.ts`); its language picks the
 * base voice when espeak-ng has a voice of that id, else `defaultVoiceId`. A request with
 * `clonePrompt` speaks with espeak-ng's pitch, pitch range, speed and voice variant set from the
 * prompt (`speed` still scales the rate) and ignores `voiceId`. Non-WAV references, references
 * with under 200 ms of voiced speech and prompts that are not valid espeak-ng prompts throw
 * `EngineInputError`.
 *
 * Rejects with `EngineUnavailableError` when the package is not installed (it is an optional
 * dependency) or a worker fails to start, with `UnknownVoiceError` when `defaultVoiceId` is not an
 * espeak-ng voice, and with `RangeError` for invalid options.
 */
export async function createEspeakEngine(options: EspeakEngineOptions = {}): Promise<TtsEngine> {
  const workerCount = options.workers ?? 1;
  const maxQueue = options.maxQueue ?? 64;
  const defaultVoiceId = options.defaultVoiceId ?? "en-us";
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const packageName = options.packageName ?? "espeak-ng";
  requirePositiveInteger("workers", workerCount);
  requirePositiveInteger("maxQueue", maxQueue);
  requirePositiveInteger("startTimeoutMs", startTimeoutMs);
  const log = options.log?.child({ component: "espeak-engine" });

  let state: State = "starting";
  // A function, not a comparison inline: `state` changes behind TypeScript's narrowing.
  const isClosed = (): boolean => state === "closed";
  let nextJobId = 1;
  const slots: WorkerSlot[] = [];
  const queue: Job[] = [];
  // Replacement workers being started after a crash; while one is, queued jobs can wait for it.
  let replacing = 0;
  // Each call keeps every worker busy plus one sentence queued, so a worker never idles while the
  // caller is sending the previous chunk.
  const lookahead = workerCount + 1;

  const startWorker = (introspect: boolean): Promise<EspeakReadyMessage> =>
    spawnWorker({ packageName, introspect, startTimeoutMs }).then(({ worker, ready }) => {
      if (state === "closed") {
        void worker.terminate();
        return ready;
      }
      const slot: WorkerSlot = { worker, job: undefined };
      slots.push(slot);
      worker.on("message", (message: EspeakWorkerMessage) => onWorkerMessage(slot, message));
      worker.on("error", (err) => log?.error({ err }, "espeak-ng worker failed"));
      worker.on("exit", (code) => onWorkerExit(slot, code));
      return ready;
    });

  const onWorkerMessage = (slot: WorkerSlot, message: EspeakWorkerMessage): void => {
    if (message.type !== "audio" && message.type !== "failed") {
      return;
    }
    const job = slot.job;
    if (job === undefined || job.message.jobId !== message.jobId) {
      log?.warn({ jobId: message.jobId }, "espeak-ng worker answered a job it was not given");
      return;
    }
    slot.job = undefined;
    if (message.type === "audio") {
      job.resolve({ pcm: new Uint8Array(message.pcm), wordSpansMs: message.wordSpansMs });
    } else {
      job.reject(new SynthesisFailedError(ENGINE_ID, message.message));
    }
    dispatch();
  };

  const onWorkerExit = (slot: WorkerSlot, code: number): void => {
    const index = slots.indexOf(slot);
    if (index !== -1) {
      slots.splice(index, 1);
    }
    if (state === "closed") {
      return;
    }
    log?.error({ exitCode: code }, "espeak-ng worker exited; starting a replacement");
    slot.job?.reject(
      new EngineUnavailableError(ENGINE_ID, `espeak-ng worker exited with code ${code}`),
    );
    replacing++;
    startWorker(false)
      .then(dispatch, (err: unknown) => {
        log?.error({ err }, "espeak-ng replacement worker failed to start");
      })
      .finally(() => {
        replacing--;
        failQueueIfNoWorkers();
      });
  };

  const noWorkerError = (): EngineUnavailableError =>
    new EngineUnavailableError(ENGINE_ID, "no espeak-ng worker is running");

  const failQueueIfNoWorkers = (): void => {
    if (slots.length === 0 && replacing === 0) {
      const error = noWorkerError();
      for (const job of queue.splice(0)) {
        job.reject(error);
      }
    }
  };

  const dispatch = (): void => {
    for (const slot of slots) {
      const job = slot.job === undefined ? queue.shift() : undefined;
      if (job !== undefined) {
        slot.job = job;
        slot.worker.postMessage(job.message);
      }
    }
  };

  const enqueue = (
    text: string,
    voice: string,
    wordsPerMinute: number,
    prosody: EspeakProsody | undefined,
    words: string[] | undefined,
  ): Job => {
    let resolve!: (audio: SentenceAudio) => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<SentenceAudio>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Lookahead jobs may fail (close(), a worker crash) before their call awaits them, or after it
    // stopped listening; their rejection must not count as unhandled.
    promise.catch(() => {});
    const jobId = nextJobId++;
    const job: Job = {
      message: {
        type: "synthesize",
        jobId,
        text,
        voice,
        wordsPerMinute,
        ...(prosody === undefined ? {} : { prosody }),
        ...(words === undefined ? {} : { words }),
      },
      promise,
      resolve,
      reject,
    };
    queue.push(job);
    dispatch();
    failQueueIfNoWorkers();
    return job;
  };

  // Drops a job its call no longer waits for: out of the queue if still there; if it is in a
  // worker already, its result settles a promise nobody reads.
  const cancel = (job: Job): void => {
    const index = queue.indexOf(job);
    if (index !== -1) {
      queue.splice(index, 1);
    }
  };

  const closedError = (): EngineUnavailableError =>
    new EngineUnavailableError(ENGINE_ID, "espeak-ng engine is closed");

  let closing: Promise<void> | undefined;
  const shutdown = async (): Promise<void> => {
    state = "closed";
    const error = closedError();
    for (const job of queue.splice(0)) {
      job.reject(error);
    }
    for (const slot of slots) {
      slot.job?.reject(error);
      slot.job = undefined;
    }
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
    log?.info("espeak-ng engine closed");
  };

  // Only the first worker (which also lists the voices) is waited for: the others warm up in the
  // background and take jobs as they come up, so an agent says hello seconds sooner on 2 cores.
  let first: EspeakReadyMessage;
  try {
    first = await startWorker(true);
  } catch (err) {
    await shutdown();
    throw err;
  }
  if (first.voiceTable === undefined) {
    await shutdown();
    throw new EngineUnavailableError(ENGINE_ID, "espeak-ng worker did not list its voices");
  }
  const voices = parseEspeakVoiceTable(first.voiceTable);
  const voicesByKey = new Map(voices.map((voice) => [voice.id.toLowerCase(), voice]));
  if (!voicesByKey.has(defaultVoiceId.toLowerCase())) {
    await shutdown();
    throw new UnknownVoiceError(ENGINE_ID, defaultVoiceId, suggestVoices(voices, defaultVoiceId));
  }
  state = "running";
  log?.info(
    { workers: workerCount, startupMs: Math.round(first.startupMs), voices: voices.length },
    "espeak-ng engine started",
  );
  for (let i = 1; i < workerCount; i++) {
    replacing++;
    startWorker(false)
      .then(dispatch, (err: unknown) => {
        log?.error({ err }, "espeak-ng worker failed to start; running with fewer workers");
      })
      .finally(() => {
        replacing--;
        failQueueIfNoWorkers();
      });
  }

  const resolveVoice = (voiceId: string): string => {
    const wanted = voiceId === "" ? defaultVoiceId : voiceId;
    // `<voice>+<variant>` speaks a listed voice with one of espeak-ng's classic voice variants
    // (m1-m8 male, f1-f5 female), as `-v en-us+f3` does on the command line.
    const plus = wanted.indexOf("+");
    const variant = plus > 0 ? wanted.slice(plus + 1).toLowerCase() : "";
    const voice = voicesByKey.get((plus > 0 ? wanted.slice(0, plus) : wanted).toLowerCase());
    if (voice !== undefined && plus > 0 && ESPEAK_VARIANTS.has(variant)) {
      return `${voice.id}+${variant}`;
    }
    if (voice === undefined || plus > 0) {
      throw new UnknownVoiceError(
        ENGINE_ID,
        voiceId,
        suggestVoices(voices, wanted, defaultVoiceId),
      );
    }
    return voice.id;
  };

  const info: EngineInfo = {
    id: ENGINE_ID,
    version: first.version ?? "unknown",
    modelFamily: ENGINE_ID,
    modelSize: "",
    format: { sampleRateHz: first.sampleRateHz, channels: first.channels },
    voices,
    supportsSpeed: true,
    supportsCloning: true,
  };

  // Voice, rate and pitch settings for a request: a preset voice, or a cloned one from its prompt.
  const voiceSettings = (
    request: EngineSynthesisRequest,
  ): { voice: string; wordsPerMinute: number; prosody: EspeakProsody | undefined } => {
    if (request.clonePrompt === undefined) {
      return {
        voice: resolveVoice(request.voiceId),
        wordsPerMinute: toWordsPerMinute(request.speed),
        prosody: undefined,
      };
    }
    const prompt = parseEspeakClonePrompt(request.clonePrompt.bytes);
    if (typeof prompt === "string") {
      throw new EngineInputError(
        ENGINE_ID,
        `clone prompt ${request.clonePrompt.digest}: ${prompt}`,
      );
    }
    const baseVoice = voicesByKey.get(prompt.baseVoice.toLowerCase());
    if (baseVoice === undefined) {
      throw new EngineInputError(
        ENGINE_ID,
        `clone prompt ${request.clonePrompt.digest} names voice ${JSON.stringify(prompt.baseVoice)}, which this espeak-ng does not have`,
      );
    }
    const speed = Number.isFinite(request.speed) && request.speed > 0 ? request.speed : 1;
    const parameters = espeakCloneParameters(prompt, baseVoice.id, speed);
    return {
      voice: parameters.voice,
      wordsPerMinute: parameters.wordsPerMinute,
      prosody: { pitch: parameters.pitch, pitchRange: parameters.pitchRange },
    };
  };

  const createClonePrompt = async (
    request: EngineCloneRequest,
    signal: AbortSignal,
  ): Promise<EngineClonePromptResult> => {
    signal.throwIfAborted();
    if (isClosed()) {
      throw closedError();
    }
    const pcm = decodeReference(request);
    const profile = await analyzeVoiceProfile(pcm, { signal });
    const voicedMs = profile.pitch.voicedRatio * profile.durationMs;
    const language = voicesByKey.get(request.language.toLowerCase());
    const prompt = createEspeakClonePrompt(profile, language?.id ?? resolveVoice(""));
    if (prompt === undefined || voicedMs < MIN_VOICED_REFERENCE_MS) {
      throw new EngineInputError(
        ENGINE_ID,
        `reference audio has ${Math.round(voicedMs)} ms of voiced speech; the CPU engine needs at least ${MIN_VOICED_REFERENCE_MS} ms to measure a pitch`,
      );
    }
    log?.info(
      { f0MedianHz: prompt.f0MedianHz, wordsPerMinute: prompt.wordsPerMinute },
      "espeak-ng clone prompt created",
    );
    return { prompt: encodeEspeakClonePrompt(prompt), contentType: ESPEAK_CLONE_CONTENT_TYPE };
  };

  return {
    info,
    async *synthesize(
      request: EngineSynthesisRequest,
      signal: AbortSignal,
    ): AsyncGenerator<EngineAudioChunk> {
      signal.throwIfAborted();
      if (isClosed()) {
        throw closedError();
      }
      const { voice, wordsPerMinute, prosody } = voiceSettings(request);
      const sentences = splitSentences(request.text);
      // With word timings, each sentence's words and where they stand in the text.
      let cursor = 0;
      const wordsOf = sentences.map((sentence) => {
        if (!request.wordTimings) return [];
        const found = sentenceWords(request.text, sentence, cursor);
        cursor = found.cursor;
        return found.words;
      });
      const bytesPerMs = (first.sampleRateHz * first.channels * 2) / 1000;
      let audioBytes = 0;
      if (sentences.length > 0 && queue.length >= maxQueue) {
        throw new EngineOverloadedError(ENGINE_ID, maxQueue);
      }
      const inFlight: Job[] = [];
      let next = 0;
      try {
        for (;;) {
          signal.throwIfAborted();
          if (isClosed()) {
            throw closedError();
          }
          while (inFlight.length < lookahead && next < sentences.length) {
            const words = request.wordTimings ? wordsOf[next]?.map((w) => w.token) : undefined;
            inFlight.push(
              enqueue(sentences[next++] as string, voice, wordsPerMinute, prosody, words),
            );
          }
          const job = inFlight[0];
          if (job === undefined) {
            return;
          }
          const { pcm, wordSpansMs } = await untilSettledOrAborted(job.promise, signal);
          inFlight.shift();
          const index = next - inFlight.length - 1;
          const offsetMs = audioBytes / bytesPerMs;
          audioBytes += pcm.byteLength;
          const words = wordsOf[index] ?? [];
          if (wordSpansMs === undefined || words.length === 0) {
            yield { pcm };
            continue;
          }
          yield {
            pcm,
            words: words.map((w, i) => ({
              word: w.word,
              startMs: Math.round(offsetMs + (wordSpansMs[2 * i] ?? 0)),
              endMs: Math.round(offsetMs + (wordSpansMs[2 * i + 1] ?? 0)),
              textOffset: w.textOffset,
            })),
          };
        }
      } finally {
        for (const job of inFlight) {
          cancel(job);
        }
      }
    },
    createClonePrompt,
    close(): Promise<void> {
      closing ??= shutdown();
      return closing;
    },
  };
}

interface SpawnedWorker {
  worker: Worker;
  ready: EspeakReadyMessage;
}

// Starts one worker and waits for its `ready`, translating every way it can fail.
function spawnWorker(options: {
  packageName: string;
  introspect: boolean;
  startTimeoutMs: number;
}): Promise<SpawnedWorker> {
  const workerData: EspeakWorkerData = {
    entryUrl: workerImplementationUrl(),
    packageName: options.packageName,
    introspect: options.introspect,
  };
  // A plain-JavaScript entry file loads the implementation, so the worker starts the same way
  // under tsx, under vitest and once compiled (see services/worker/ts-worker-entry.mjs).
  const worker = new Worker(TS_WORKER_ENTRY_URL, {
    workerData,
    name: ENGINE_ID,
  });
  return new Promise((resolve, reject) => {
    const fail = (err: EngineUnavailableError): void => {
      cleanup();
      void worker.terminate();
      reject(err);
    };
    const onMessage = (message: EspeakWorkerMessage): void => {
      if (message.type === "ready") {
        cleanup();
        resolve({ worker, ready: message });
      } else if (message.type === "unavailable") {
        fail(
          new EngineUnavailableError(
            ENGINE_ID,
            `the espeak-ng engine needs the optional package "${options.packageName}" (GPL-3.0), which is not installed; run \`npm install espeak-ng\``,
            { cause: new Error(message.message) },
          ),
        );
      }
    };
    const onError = (err: Error): void => {
      fail(
        new EngineUnavailableError(ENGINE_ID, `espeak-ng worker failed to start: ${err.message}`, {
          cause: err,
        }),
      );
    };
    const onExit = (code: number): void => {
      fail(
        new EngineUnavailableError(ENGINE_ID, `espeak-ng worker exited with code ${code} at start`),
      );
    };
    const timer = setTimeout(() => {
      fail(
        new EngineUnavailableError(
          ENGINE_ID,
          `espeak-ng worker did not start within ${options.startTimeoutMs} ms`,
        ),
      );
    }, options.startTimeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
    };
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.on("exit", onExit);
  });
}

// The worker implementation sits next to this file, as .ts when run from source and .js once built.
function workerImplementationUrl(): string {
  const self = new URL(import.meta.url);
  const extension = self.pathname.endsWith(".ts") ? "ts" : "js";
  return new URL(`./espeak-worker.${extension}`, self).href;
}

function untilSettledOrAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

// Decodes a WAV reference for cloning; anything else is the caller's mistake.
function decodeReference(request: EngineCloneRequest): PcmAudio {
  const mediaType = request.contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (!WAV_CONTENT_TYPES.includes(mediaType)) {
    throw new EngineInputError(
      ENGINE_ID,
      `the CPU engine reads WAV references; got ${mediaType.replace(/[^\x20-\x7e]/g, "?").slice(0, 100) || "no content type"} (send audio/wav, or clone on an engine that reads it)`,
    );
  }
  try {
    return decodeAudioForAnalysis(request.referenceAudio, mediaType);
  } catch (err) {
    if (isAudioDecodeError(err)) {
      throw new EngineInputError(ENGINE_ID, `reference audio: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

function toWordsPerMinute(speed: number): number {
  if (!Number.isFinite(speed) || speed <= 0) {
    return BASE_WORDS_PER_MINUTE;
  }
  const wordsPerMinute = Math.round(BASE_WORDS_PER_MINUTE * speed);
  return Math.min(MAX_WORDS_PER_MINUTE, Math.max(MIN_WORDS_PER_MINUTE, wordsPerMinute));
}

// Valid ids to show with an unknown one: same primary language first, then the default.
function suggestVoices(voices: EngineVoice[], wanted: string, defaultVoiceId?: string): string[] {
  const primary = wanted.toLowerCase().split(/[-_]/)[0];
  const related = voices
    .filter((voice) => voice.languages.some((tag) => tag.toLowerCase().split("-")[0] === primary))
    .map((voice) => voice.id);
  const fallback = voices.map((voice) => voice.id);
  const ordered = [
    ...related,
    ...(defaultVoiceId === undefined ? [] : [defaultVoiceId]),
    ...fallback,
  ];
  return [...new Set(ordered)].slice(0, MAX_SUGGESTED_VOICES);
}

function requirePositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
}
