import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type AudioAnalysis, AudioAnalysisSchema } from "../../gen/voxgate/v1/analysis_pb.js";
import { VoiceGender } from "../../gen/voxgate/v1/capabilities_pb.js";
import { type Voice, VoiceSchema, VoiceType } from "../../gen/voxgate/v1/voice_pb.js";
import type { VoiceRecord } from "./voice-repository.js";

/** Turns an analysis into the JSON stored on a voice row (protobuf JSON, so fields survive). */
export function analysisToJson(analysis: AudioAnalysis): JsonValue {
  return toJson(AudioAnalysisSchema, analysis);
}

/** Reads an analysis stored by {@link analysisToJson}; undefined when there is none or it is unreadable. */
export function analysisFromJson(json: unknown): AudioAnalysis | undefined {
  if (json === undefined || json === null) return undefined;
  try {
    return fromJson(AudioAnalysisSchema, json as JsonValue, { ignoreUnknownFields: true });
  } catch {
    return undefined;
  }
}

/**
 * The public view of a cloned voice. `showOwner` is false for callers of another tenant (a shared
 * voice does not reveal whose it is).
 */
export function clonedVoiceOf(record: VoiceRecord, showOwner = true): Voice {
  const analysis = analysisFromJson(record.analysis);
  return create(VoiceSchema, {
    id: record.id,
    name: record.name,
    type: VoiceType.CLONED,
    engine: record.engine,
    model: { family: record.modelFamily, size: record.modelSize },
    languages: record.language ? [record.language] : [],
    gender: analysis?.gender ?? VoiceGender.UNSPECIFIED,
    description: record.description,
    labels: record.labels,
    promptDigest: record.promptDigest,
    referenceText: record.referenceText,
    ...(analysis ? { analysis } : {}),
    createTime: timestampFromDate(record.createdAt),
    owner: showOwner ? record.owner : "",
    shared: record.shared,
  });
}
