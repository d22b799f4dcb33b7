/**
 * Messages between `analyze-audio.ts` (the caller's thread) and `analysis-worker.ts`. Types only.
 */
import type { AnalysisKind } from "../../gen/voxgate/v1/analysis_pb.js";
import type { AudioAnalysisInit, PcmAudio, VoiceProfile } from "./audio-analysis.js";

/** `workerData` of an analysis worker. */
export interface AnalysisWorkerData {
  /** URL of the worker implementation the plain-JavaScript entry file imports. */
  entryUrl: string;
}

/** The one task a worker runs before it exits. */
export type AnalysisTask =
  | { type: "analyze"; pcm: PcmAudio; kinds: AnalysisKind[] }
  | { type: "profile"; pcm: PcmAudio };

/** The worker's answer to an {@link AnalysisTask}. */
export type AnalysisResultMessage =
  | { type: "analyzed"; analysis: AudioAnalysisInit }
  | { type: "profiled"; profile: VoiceProfile }
  | { type: "failed"; name: string; message: string };
