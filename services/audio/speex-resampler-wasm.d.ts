/**
 * The parts of `@echogarden/speex-resampler-wasm` (an Emscripten build of SpeexDSP's resampler,
 * BSD-3-Clause, without type declarations) that {@link ./resampler.ts} uses.
 */
declare module "@echogarden/speex-resampler-wasm/simd" {
  /** The instantiated WASM module: C functions take and return pointers into its heap. */
  export interface SpeexResamplerModule {
    HEAP16: Int16Array;
    HEAPU32: Uint32Array;
    _malloc(bytes: number): number;
    _free(pointer: number): void;
    _speex_resampler_init(
      channels: number,
      inRate: number,
      outRate: number,
      quality: number,
      errorPointer: number,
    ): number;
    _speex_resampler_destroy(state: number): void;
    _speex_resampler_skip_zeros(state: number): number;
    _speex_resampler_get_input_latency(state: number): number;
    _speex_resampler_process_interleaved_int(
      state: number,
      input: number,
      inputFramesPointer: number,
      output: number,
      outputFramesPointer: number,
    ): number;
  }
  /** Instantiates the module (compiles the WASM once per call). */
  export default function createModule(): Promise<SpeexResamplerModule>;
}
