/**
 * The asynchronous face of the analyzer: short audio is measured on the calling thread, longer
 * audio in a worker thread of its own, so that an agent or gateway keeps answering (heartbeats,
 * other calls) while minutes of audio are analyzed.
 */
import { Worker } from "node:worker_threads";
import type { AnalysisKind } from "../../gen/voxgate/v1/analysis_pb.js";
import { TS_WORKER_ENTRY_URL } from "../worker/ts-worker-entry-url.js";
import type {
  AnalysisResultMessage,
  AnalysisTask,
  AnalysisWorkerData,
} from "./analysis-protocol.js";
import {
  type AudioAnalysisInit,
  analyzePcm,
  checkPcm,
  type PcmAudio,
  profileVoice,
  type VoiceProfile,
} from "./audio-analysis.js";

/** Options of {@link analyzeAudio} and {@link analyzeVoiceProfile}. */
export interface AnalyzeAudioOptions {
  /**
   * Audio up to this long is measured on the calling thread; longer audio in a new worker thread.
   * A full analysis costs about 12 ms of CPU per second of audio, nearly all of it pitch tracking
   * (0.66-0.74 s for 60 s at 22.05 kHz mono or 48 kHz stereo, `bench/audio-analysis.ts`), and a
   * worker costs 30-50 ms to start (more under a TypeScript loader), so the default keeps inline
   * work under about 40 ms.
   * @default 3000
   */
  inlineMaxMs?: number;
  /** Aborting terminates the worker and rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Measures `pcm` like {@link analyzePcm} (see there for fields and `kinds`) without blocking the
 * event loop for long: audio longer than `inlineMaxMs` is analyzed in a worker thread that ends
 * with the call. Rejects with `RangeError` for a malformed `pcm`, with `signal.reason` on abort.
 */
export async function analyzeAudio(
  pcm: PcmAudio,
  kinds: readonly AnalysisKind[],
  options: AnalyzeAudioOptions = {},
): Promise<AudioAnalysisInit> {
  checkPcm(pcm);
  options.signal?.throwIfAborted();
  if (durationMs(pcm) <= (options.inlineMaxMs ?? DEFAULT_INLINE_MAX_MS)) {
    return analyzePcm(pcm, kinds);
  }
  const answer = await runInWorker({ type: "analyze", pcm, kinds: [...kinds] }, options.signal);
  if (answer.type !== "analyzed") {
    throw new Error(`analysis worker answered ${answer.type}`);
  }
  return answer.analysis;
}

/**
 * Profiles the voice in `pcm` like {@link profileVoice} (f0 statistics and speaking rate) without
 * blocking the event loop for long, as {@link analyzeAudio} does.
 */
export async function analyzeVoiceProfile(
  pcm: PcmAudio,
  options: AnalyzeAudioOptions = {},
): Promise<VoiceProfile> {
  checkPcm(pcm);
  options.signal?.throwIfAborted();
  if (durationMs(pcm) <= (options.inlineMaxMs ?? DEFAULT_INLINE_MAX_MS)) {
    return profileVoice(pcm);
  }
  const answer = await runInWorker({ type: "profile", pcm }, options.signal);
  if (answer.type !== "profiled") {
    throw new Error(`analysis worker answered ${answer.type}`);
  }
  return answer.profile;
}

const DEFAULT_INLINE_MAX_MS = 3000;

function durationMs(pcm: PcmAudio): number {
  return (pcm.samples.length / pcm.channels / pcm.sampleRateHz) * 1000;
}

// Starts a worker for one task and settles with its answer; "failed" answers are rethrown with
// their error class where it is a standard one.
function runInWorker(
  task: AnalysisTask,
  signal: AbortSignal | undefined,
): Promise<Exclude<AnalysisResultMessage, { type: "failed" }>> {
  const workerData: AnalysisWorkerData = {
    entryUrl: new URL(`./analysis-worker${extensionOf(import.meta.url)}`, import.meta.url).href,
  };
  const worker = new Worker(TS_WORKER_ENTRY_URL, {
    workerData,
    name: "voxgate-analysis",
  });
  // A copy is transferred, so the caller's samples stay usable and nothing is copied twice.
  const samples = task.pcm.samples.slice();
  worker.postMessage({ ...task, pcm: { ...task.pcm, samples } }, [samples.buffer]);
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (settle: () => void): void => {
      if (!settled) {
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        void worker.terminate();
        settle();
      }
    };
    const onAbort = (): void => finish(() => reject(signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    worker.once("message", (answer: AnalysisResultMessage) => {
      finish(() => {
        if (answer.type === "failed") {
          reject(
            answer.name === "RangeError"
              ? new RangeError(answer.message)
              : new Error(answer.message),
          );
        } else {
          resolve(answer);
        }
      });
    });
    worker.once("error", (err) => finish(() => reject(err)));
    worker.once("exit", (code) =>
      finish(() => reject(new Error(`analysis worker exited with code ${code} before answering`))),
    );
  });
}

// `.ts` when running from source, `.js` once compiled: the worker file sits beside this one.
function extensionOf(url: string): string {
  return new URL(url).pathname.endsWith(".ts") ? ".ts" : ".js";
}
