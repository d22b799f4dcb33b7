/**
 * The emulator's worker handler: what a voxgate text-to-speech worker on RunPod does with a job,
 * over a real {@link TtsEngine} (the CPU engine in tests). It follows the job contract of
 * `services/backends/serverless/tts-job.ts`, stops when its signal aborts, and can be slowed down
 * per sentence for tests.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  JOB_ENCODING,
  type TtsJobOutput,
  ttsJobInputSchema,
} from "../../services/backends/serverless/tts-job.js";
import type { EngineClonePrompt, TtsEngine } from "../../services/engines/tts-engine.js";

/** A worker handler: a job's input in, its output out; throws to fail the job. */
export type WorkerHandler = (input: unknown, signal: AbortSignal) => Promise<unknown>;

/** Options of {@link createTtsWorkerHandler}. */
export interface TtsWorkerOptions {
  /** The engine that speaks. */
  engine: TtsEngine;
  /** Extra wait after each engine chunk, in ms, read at every chunk (a slow worker). */
  chunkDelayMs?: () => number;
  /** Records every clone prompt URL the worker fetched, with the HTTP status it got. */
  promptFetches?: Array<{ url: string; status: number }>;
}

/**
 * Downloads a job's clone prompt from its signed URL, as a real worker does: no credentials, only
 * the URL; the bytes must match the digest and size the gateway sent.
 */
async function fetchClonePrompt(
  prompt: { url: string; digest: string; size_bytes: number },
  signal: AbortSignal,
  fetches: TtsWorkerOptions["promptFetches"],
): Promise<EngineClonePrompt> {
  const res = await fetch(prompt.url, {
    signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]),
  });
  fetches?.push({ url: prompt.url, status: res.status });
  if (!res.ok) throw new Error(`prompt download failed: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const digest = createHash("sha256").update(bytes).digest("hex");
  if (digest !== prompt.digest || bytes.byteLength !== prompt.size_bytes) {
    throw new Error(`prompt download does not match digest ${prompt.digest}`);
  }
  return { digest, bytes };
}

/** Creates the text-to-speech worker handler. */
export function createTtsWorkerHandler(options: TtsWorkerOptions): WorkerHandler {
  const { engine } = options;
  return async (raw, signal) => {
    const parsed = ttsJobInputSchema.safeParse(raw);
    if (!parsed.success) throw new Error(`bad input: ${parsed.error.issues[0]?.message ?? ""}`);
    const input = parsed.data;
    if (input.engine && input.engine !== engine.info.id) {
      throw new Error(`engine "${input.engine}" is not on this worker (it has ${engine.info.id})`);
    }
    const clonePrompt = input.clone_prompt
      ? await fetchClonePrompt(input.clone_prompt, signal, options.promptFetches)
      : undefined;
    const parts: Uint8Array[] = [];
    for await (const chunk of engine.synthesize(
      {
        text: input.text,
        voiceId: input.voice,
        speed: input.speed,
        instructions: input.instructions,
        ...(clonePrompt ? { clonePrompt } : {}),
      },
      signal,
    )) {
      parts.push(chunk.pcm);
      const delayMs = options.chunkDelayMs?.() ?? 0;
      if (delayMs > 0) await sleep(delayMs, undefined, { signal });
    }
    const output: TtsJobOutput = {
      audio_base64: Buffer.concat(parts).toString("base64"),
      encoding: JOB_ENCODING,
      sample_rate_hz: engine.info.format.sampleRateHz,
      channels: engine.info.format.channels,
      engine: engine.info.id,
      model: { family: engine.info.modelFamily, size: engine.info.modelSize },
    };
    return output;
  };
}
