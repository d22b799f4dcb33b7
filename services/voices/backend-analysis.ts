/**
 * Audio analysis routed to backends: speaker classifiers (age, gender) on backends with
 * FEATURE_CLASSIFY_SPEAKER, measurements on backends with FEATURE_ANALYZE, and the gateway's own
 * DSP (duration, loudness, f0, gender from pitch) for whatever no backend offers.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AnalysisKind,
  type AudioAnalysis,
  AudioAnalysisSchema,
} from "../../gen/voxgate/v1/analysis_pb.js";
import { Feature, VoiceGender } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { AnalyzeAudioRequestSchema } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import type { BackendRegistry } from "../registry/index.js";

/** Audio chunk size on the way to a backend, in bytes (well under message limits). */
const UPLOAD_CHUNK_BYTES = 256 * 1024;

/** One analysis to route, as {@link analyzeOnBackends} takes it. */
export interface BackendAnalysisOrder {
  /** The audio (type, size and duration already checked). */
  audio: Uint8Array;
  /** Its MIME type. */
  contentType: string;
  /** What to measure; empty means everything. */
  kinds: readonly AnalysisKind[];
  /** The caller's signal (deadline included). */
  signal: AbortSignal;
  /** The gateway's own measurement, the fallback and the base the backends' figures go onto. */
  dsp(): Promise<AudioAnalysis>;
}

/** Reports whether any registered backend (in any state) offers `feature`. */
export function anyBackendOffers(registry: BackendRegistry, feature: Feature): boolean {
  return registry
    .list()
    .some((b) => b.capabilities.engines.some((engine) => engine.features.includes(feature)));
}

/**
 * Measures audio: the gateway's DSP first, then, when asked for (or for "everything"), age and
 * gender from a classifier backend and loudness/pitch from an analysis backend, whose figures
 * replace the DSP's. A backend's failure fails the call (after the registry's failover): a figure
 * a backend offers is never silently swapped for a weaker one.
 *
 * @throws ConnectError FAILED_PRECONDITION naming FEATURE_CLASSIFY_SPEAKER when age is asked for
 *   explicitly and no backend offers a classifier, or the classifier returned no age.
 */
export async function analyzeOnBackends(
  registry: BackendRegistry,
  order: BackendAnalysisOrder,
): Promise<AudioAnalysis> {
  const all = order.kinds.length === 0;
  const wants = (kind: AnalysisKind) => all || order.kinds.includes(kind);
  const explicitAge = order.kinds.includes(AnalysisKind.AGE);
  const classifier = anyBackendOffers(registry, Feature.CLASSIFY_SPEAKER);
  if (explicitAge && !classifier) {
    throw new ConnectError(
      "speaker age needs an age classifier: no connected backend offers classify_speaker (FEATURE_CLASSIFY_SPEAKER)",
      Code.FailedPrecondition,
    );
  }
  const result = create(AudioAnalysisSchema, await order.dsp());
  const classify = classifier && (wants(AnalysisKind.AGE) || wants(AnalysisKind.GENDER));
  const measure =
    anyBackendOffers(registry, Feature.ANALYZE) &&
    (wants(AnalysisKind.BASIC) || wants(AnalysisKind.PITCH));
  const analyzers: string[] = [];
  if (classify) {
    const kinds = [AnalysisKind.GENDER, AnalysisKind.AGE].filter(wants);
    const { backendId, analysis } = await callBackend(
      registry,
      Feature.CLASSIFY_SPEAKER,
      all ? [] : kinds,
      order,
    );
    if (explicitAge && analysis.ageYears === undefined) {
      throw new ConnectError(
        `backend ${backendId}'s speaker classifier returned no age (classify_speaker)`,
        Code.FailedPrecondition,
      );
    }
    if (analysis.gender !== VoiceGender.UNSPECIFIED) {
      result.gender = analysis.gender;
      result.genderConfidence = analysis.genderConfidence;
    }
    if (analysis.ageYears !== undefined) {
      result.ageYears = analysis.ageYears;
      result.ageConfidence = analysis.ageConfidence;
    }
    mergeFeatures(result, analysis);
    analyzers.push(`${backendId}/${analysis.analyzer || "classifier"}`);
  }
  if (measure) {
    const kinds = [AnalysisKind.BASIC, AnalysisKind.PITCH].filter(wants);
    const { backendId, analysis } = await callBackend(
      registry,
      Feature.ANALYZE,
      all ? [] : kinds,
      order,
    );
    for (const field of [
      "loudnessLufs",
      "peakDbfs",
      "medianF0Hz",
      "f0StddevHz",
      "voicedRatio",
    ] as const) {
      if (analysis[field] !== undefined) result[field] = analysis[field];
    }
    mergeFeatures(result, analysis);
    analyzers.push(`${backendId}/${analysis.analyzer || "analyzer"}`);
  }
  if (analyzers.length > 0) {
    result.analyzer = [result.analyzer, ...analyzers].filter(Boolean).join(", ");
  }
  return result;
}

function mergeFeatures(into: AudioAnalysis, from: AudioAnalysis): void {
  if (from.features && Object.keys(from.features).length > 0) {
    into.features = { ...(into.features ?? {}), ...from.features };
  }
}

async function callBackend(
  registry: BackendRegistry,
  feature: Feature,
  kinds: readonly AnalysisKind[],
  order: BackendAnalysisOrder,
): Promise<{ backendId: string; analysis: AudioAnalysis }> {
  const results = registry.call(
    { feature },
    { signal: order.signal },
    async function* attempt({ backend, signal, timeoutMs }) {
      const response = await backend.client.analyzeAudio(upload(order, kinds), {
        signal,
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      });
      yield { backendId: backend.id, analysis: create(AudioAnalysisSchema, response.analysis) };
    },
  );
  for await (const result of results) return result;
  throw new ConnectError("the backend answered no analysis", Code.Internal);
}

async function* upload(
  order: BackendAnalysisOrder,
  kinds: readonly AnalysisKind[],
): AsyncIterable<MessageInitShape<typeof AnalyzeAudioRequestSchema>> {
  yield { kind: { case: "spec", value: { contentType: order.contentType, kinds: [...kinds] } } };
  for (let offset = 0; offset < order.audio.byteLength; offset += UPLOAD_CHUNK_BYTES) {
    yield {
      kind: { case: "audio", value: order.audio.subarray(offset, offset + UPLOAD_CHUNK_BYTES) },
    };
  }
}
