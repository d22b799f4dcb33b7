import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type AnalysisKind,
  type AudioAnalysis,
  AudioAnalysisSchema,
} from "../../gen/voxgate/v1/analysis_pb.js";
import { analyzeAudio } from "../analysis/analyze-audio.js";
import { decodeAudioForAnalysis, isAudioDecodeError } from "../analysis/decode-audio.js";
import { inspectReferenceAudio, isReferenceAudioError } from "../audio/reference-audio.js";
import type { BackendRegistry } from "../registry/index.js";
import { analyzeOnBackends } from "./backend-analysis.js";
import type { VoiceAudioTools } from "./voice-storage.js";

/** Options of {@link createVoiceAudioTools}. */
export interface VoiceAudioToolsOptions {
  /** Largest upload, in bytes (`VOXGATE_MAX_REFERENCE_BYTES`). */
  maxReferenceBytes: number;
  /** Longest upload, in seconds (`VOXGATE_MAX_REFERENCE_SECONDS`). */
  maxReferenceSeconds: number;
  /**
   * Backends offering speaker classifiers and analysis; without it everything is measured on the
   * gateway (and age cannot be had).
   */
  registry?: BackendRegistry;
}

/**
 * Binds the gateway's audio checks (magic bytes, duration from the header, see
 * `inspectReferenceAudio`) and its analysis (DSP on decoded PCM, off the event loop for long
 * audio, completed by backends' classifiers and analyzers, see `analyzeOnBackends`) to the voice
 * catalog, translating their errors into Connect codes.
 */
export function createVoiceAudioTools(options: VoiceAudioToolsOptions): VoiceAudioTools {
  return {
    async inspect(audio) {
      try {
        return await inspectReferenceAudio(audio, {
          maxBytes: options.maxReferenceBytes,
          maxDurationMs: options.maxReferenceSeconds * 1000,
        });
      } catch (err) {
        if (isReferenceAudioError(err)) throw new ConnectError(err.message, err.code);
        throw err;
      }
    },
    async analyze(audio, contentType, kinds, signal) {
      const dsp = () => analyzeHere(audio, contentType, kinds, signal);
      if (!options.registry) return dsp();
      return analyzeOnBackends(options.registry, { audio, contentType, kinds, signal, dsp });
    },
  };
}

/** The gateway's own DSP measurement. */
async function analyzeHere(
  audio: Uint8Array,
  contentType: string,
  kinds: readonly AnalysisKind[],
  signal: AbortSignal,
): Promise<AudioAnalysis> {
  let pcm: ReturnType<typeof decodeAudioForAnalysis>;
  try {
    pcm = decodeAudioForAnalysis(audio, contentType);
  } catch (err) {
    if (isAudioDecodeError(err)) throw new ConnectError(err.message, Code.InvalidArgument);
    throw err;
  }
  return create(AudioAnalysisSchema, await analyzeAudio(pcm, kinds, { signal }));
}
