/**
 * Test helper: a {@link TtsEngine} that "speaks" a 1 kHz sine, so what reaches a client can be
 * measured exactly (duration, rate, SNR after resampling and encoding). Each call yields
 * `seconds` of audio (or n when the text starts with "<n> seconds") in 0.1 s chunks at the
 * engine's rate, or at `params.rate_hz` when a request names one (an engine whose rate varies per call, like a model server's WAV). A test can hold a
 * call before its last chunk (see {@link SineEngine.holdLastChunk}) to prove that audio left the
 * gateway while synthesis was still running.
 */
import type { EngineAudioChunk, TtsEngine } from "../../services/engines/tts-engine.js";

/** Frequency of the engine's tone, in Hz. */
export const SINE_ENGINE_TONE_HZ = 1000;
/** Peak of the engine's tone, as a share of full scale. */
const AMPLITUDE = 0.5;

/** The engine plus its test controls. */
export interface SineEngine extends TtsEngine {
  /**
   * Makes the next calls wait before their last chunk until `release()` is called (the held calls
   * then finish). Returns `release`.
   */
  holdLastChunk(): () => void;
  /** Number of calls that are waiting before their last chunk now. */
  readonly held: number;
}

/** Creates the engine: `id`, default rate and length of every call's audio. */
export function createSineEngine(options: {
  id?: string;
  sampleRateHz: number;
  seconds: number;
}): SineEngine {
  let gate: Promise<void> | undefined;
  let held = 0;
  return {
    info: {
      id: options.id ?? "sine",
      version: "0.0.0-test",
      modelFamily: options.id ?? "sine",
      modelSize: "",
      format: { sampleRateHz: options.sampleRateHz, channels: 1 },
      voices: [{ id: "tone", name: "Tone", languages: ["en"], gender: "" }],
      supportsSpeed: false,
    },
    holdLastChunk() {
      let release = () => {};
      gate = new Promise<void>((resolve) => {
        release = () => {
          gate = undefined;
          resolve();
        };
      });
      return release;
    },
    get held() {
      return held;
    },
    async *synthesize(request, signal): AsyncGenerator<EngineAudioChunk> {
      const rate = Number(request.params?.rate_hz ?? options.sampleRateHz);
      // "<n> seconds …" asks for another length than the engine's (works through every API).
      const seconds = Number(
        /^(\d+(?:\.\d+)?) seconds\b/.exec(request.text)?.[1] ?? options.seconds,
      );
      const total = Math.round(rate * seconds);
      const chunkFrames = Math.round(rate / 10);
      const format = { sampleRateHz: rate, channels: 1 };
      for (let start = 0; start < total; start += chunkFrames) {
        const frames = Math.min(chunkFrames, total - start);
        if (start + frames >= total && gate) {
          held++;
          try {
            await Promise.race([
              gate,
              new Promise((_, reject) =>
                signal.addEventListener("abort", () => reject(signal.reason), { once: true }),
              ),
            ]);
          } finally {
            held--;
          }
        }
        signal.throwIfAborted();
        const pcm = new Uint8Array(frames * 2);
        const view = new DataView(pcm.buffer);
        for (let i = 0; i < frames; i++) {
          const value =
            AMPLITUDE * Math.sin((2 * Math.PI * SINE_ENGINE_TONE_HZ * (start + i)) / rate);
          view.setInt16(i * 2, Math.round(32767 * value), true);
        }
        yield start === 0 ? { pcm, format } : { pcm };
        // Let other work run between chunks, as a real engine would.
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
    async close() {},
  };
}
