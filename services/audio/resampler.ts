/**
 * Streaming sample-rate conversion of 16-bit PCM over SpeexDSP's resampler (the WASM build in
 * `@echogarden/speex-resampler-wasm`, BSD-3-Clause): state carries across chunks, so a stream is
 * converted as it arrives, never buffered whole.
 */
import createSpeexModule, {
  type SpeexResamplerModule,
} from "@echogarden/speex-resampler-wasm/simd";

/** Lowest and highest quality SpeexDSP accepts (0: fastest, 10: best). */
export const RESAMPLER_QUALITY_RANGE = { min: 0, max: 10 } as const;

/**
 * Default resampler quality: 7 keeps a resampled 1 kHz sine at about 90 dB SNR (the 16-bit
 * floor) for 1 to 3 ms of CPU per audio second on this kind of machine (`npm run bench`).
 */
export const DEFAULT_RESAMPLER_QUALITY = 7;

/** Options of {@link ResamplerFactory.create}. */
export interface PcmResamplerOptions {
  /** Sample rate of the input, in Hz. */
  fromHz: number;
  /** Sample rate of the output, in Hz. */
  toHz: number;
  /** Interleaved channels of both input and output. */
  channels: number;
  /** SpeexDSP quality, 0 to 10. @default {@link DEFAULT_RESAMPLER_QUALITY} */
  quality?: number;
}

/**
 * Converts one stream of signed 16-bit little-endian interleaved PCM. The output is aligned with
 * the input (the filter's delay is removed) and, once {@link PcmResampler.end} was called, holds
 * exactly `round(input frames × toHz / fromHz)` frames.
 */
export interface PcmResampler {
  /** Converts the next chunk (a whole number of frames) and returns the frames ready now. */
  push(pcm: Uint8Array): Uint8Array;
  /** Flushes the filter and returns the last frames; frees the state. Later calls return nothing. */
  end(): Uint8Array;
  /** Frees the state without flushing (an abandoned stream). Idempotent. */
  dispose(): void;
}

/** Makes resamplers; all share one WASM instance. */
export interface ResamplerFactory {
  /**
   * Starts a resampler. Throws `RangeError` for a rate outside 1..768000 Hz, a channel count
   * outside 1..16 or a quality outside 0..10.
   */
  create(options: PcmResamplerOptions): PcmResampler;
}

// Frames converted per call into the WASM heap: bounds the heap buffers of each resampler.
const BLOCK_FRAMES = 4096;
const EMPTY = new Uint8Array(0);

// The WASM module is code, not state: compiled once per process, on first use.
let loading: Promise<ResamplerFactory> | undefined;

/** Loads the resampler's WASM module once per process and returns the factory. */
export function loadResamplerFactory(): Promise<ResamplerFactory> {
  loading ??= createSpeexModule().then(factoryOver);
  return loading;
}

function factoryOver(speex: SpeexResamplerModule): ResamplerFactory {
  // Resamplers whose stream was dropped without end() or dispose() still free their heap.
  const leaks = new FinalizationRegistry<() => void>((free) => free());
  return {
    create(options) {
      const { fromHz, toHz, channels } = options;
      const quality = options.quality ?? DEFAULT_RESAMPLER_QUALITY;
      for (const [name, rate] of [
        ["fromHz", fromHz],
        ["toHz", toHz],
      ] as const) {
        if (!Number.isInteger(rate) || rate < 1 || rate > 768_000) {
          throw new RangeError(`${name} must be an integer from 1 to 768000, got ${rate}`);
        }
      }
      if (!Number.isInteger(channels) || channels < 1 || channels > 16) {
        throw new RangeError(`channels must be an integer from 1 to 16, got ${channels}`);
      }
      if (
        !Number.isInteger(quality) ||
        quality < RESAMPLER_QUALITY_RANGE.min ||
        quality > RESAMPLER_QUALITY_RANGE.max
      ) {
        throw new RangeError(`resampler quality must be an integer from 0 to 10, got ${quality}`);
      }
      const frameBytes = channels * 2;
      const outBlockFrames = Math.ceil((BLOCK_FRAMES * toHz) / fromHz) + 64;
      const scratch = speex._malloc(8);
      const input = speex._malloc(BLOCK_FRAMES * frameBytes);
      const output = speex._malloc(outBlockFrames * frameBytes);
      const state = speex._speex_resampler_init(channels, fromHz, toHz, quality, scratch);
      if (state === 0) {
        for (const pointer of [scratch, input, output]) speex._free(pointer);
        throw new RangeError(`the resampler refused ${fromHz} Hz to ${toHz} Hz`);
      }
      // Drop the filter's leading zeros: output sample 0 is input sample 0.
      speex._speex_resampler_skip_zeros(state);
      const latencyFrames = speex._speex_resampler_get_input_latency(state);
      let freed = false;
      const free = () => {
        if (freed) return;
        freed = true;
        speex._speex_resampler_destroy(state);
        for (const pointer of [scratch, input, output]) speex._free(pointer);
      };
      const token = {};
      leaks.register(token, free, token);
      let framesIn = 0;
      let framesOut = 0;

      // Converts interleaved samples through the heap, block by block.
      const run = (samples: Int16Array): Int16Array => {
        const parts: Int16Array[] = [];
        let offset = 0;
        while (offset < samples.length) {
          const frames = Math.min(BLOCK_FRAMES, (samples.length - offset) / channels);
          // Views are re-read on each turn: the heap can grow, which replaces them.
          speex.HEAP16.set(samples.subarray(offset, offset + frames * channels), input >> 1);
          speex.HEAPU32[scratch >> 2] = frames;
          speex.HEAPU32[(scratch >> 2) + 1] = outBlockFrames;
          speex._speex_resampler_process_interleaved_int(
            state,
            input,
            scratch,
            output,
            scratch + 4,
          );
          const used = speex.HEAPU32[scratch >> 2] ?? 0;
          const made = speex.HEAPU32[(scratch >> 2) + 1] ?? 0;
          if (made > 0) {
            parts.push(speex.HEAP16.slice(output >> 1, (output >> 1) + made * channels));
          }
          if (used === 0 && made === 0) throw new Error("the resampler made no progress");
          offset += used * channels;
        }
        return joinSamples(parts);
      };

      return {
        push(pcm) {
          if (freed) throw new Error("the resampler was already ended");
          if (pcm.byteLength % frameBytes !== 0) {
            throw new RangeError(
              `PCM chunk of ${pcm.byteLength} bytes is not a whole number of ${frameBytes}-byte frames`,
            );
          }
          if (pcm.byteLength === 0) return EMPTY;
          framesIn += pcm.byteLength / frameBytes;
          const out = run(toSamples(pcm));
          framesOut += out.length / channels;
          return toBytes(out);
        },
        end() {
          if (freed) return EMPTY;
          // Zeros push the delayed tail out; the total is then cut to the exact length.
          const tail = run(new Int16Array((latencyFrames + 1) * channels));
          free();
          leaks.unregister(token);
          const want = Math.round((framesIn * toHz) / fromHz) - framesOut;
          if (want <= 0) return EMPTY;
          const out = new Int16Array(want * channels);
          out.set(tail.subarray(0, Math.min(tail.length, out.length)));
          framesOut += want;
          return toBytes(out);
        },
        dispose() {
          free();
          leaks.unregister(token);
        },
      };
    },
  };
}

/** Frames a stream of `frames` input frames has after conversion from `fromHz` to `toHz`. */
export function resampledFrames(frames: number, fromHz: number, toHz: number): number {
  return Math.round((frames * toHz) / fromHz);
}

// PCM arrives little-endian, possibly at an odd offset into a shared buffer.
function toSamples(pcm: Uint8Array): Int16Array {
  if (pcm.byteOffset % 2 === 0) {
    return new Int16Array(pcm.buffer, pcm.byteOffset, pcm.byteLength / 2);
  }
  // A copy (never Buffer#slice, which is a view of a possibly odd-sized pool).
  const copy = new Int16Array(pcm.byteLength / 2);
  new Uint8Array(copy.buffer).set(pcm);
  return copy;
}

function toBytes(samples: Int16Array): Uint8Array {
  return new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
}

function joinSamples(parts: readonly Int16Array[]): Int16Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  let length = 0;
  for (const part of parts) length += part.length;
  const joined = new Int16Array(length);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}
