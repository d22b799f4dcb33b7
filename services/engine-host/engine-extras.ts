/**
 * The engine host's non-speech calls: text generation (GPUBackendService.Generate) and audio
 * analysis (AnalyzeAudio), each routed to the hosted engine that offers it.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { AnalysisKind, type AudioAnalysisSchema } from "../../gen/voxgate/v1/analysis_pb.js";
import { VoiceGender } from "../../gen/voxgate/v1/capabilities_pb.js";
import type {
  AnalyzeAudioRequest,
  GenerateRequest,
  GenerateResponseSchema,
} from "../../gen/voxgate/v1/gpu_backend_pb.js";
import type { EngineAnalysis, EngineAnalysisKind, TtsEngine } from "../engines/tts-engine.js";
import { toEngineRpcError } from "./engine-error-codes.js";

/** What {@link createEngineExtras} needs from the engine host. */
export interface EngineExtrasOptions {
  /** The hosted engines. */
  engines: readonly TtsEngine[];
  /** Largest audio AnalyzeAudio accepts, in bytes (`VOXGATE_AGENT_MAX_REFERENCE_BYTES`). */
  maxAudioBytes: number;
  /** Takes a slot (throws when none is free or the host drains). */
  enter(): void;
  /** Gives the slot back. */
  leave(): void;
}

/** Generate and AnalyzeAudio over the hosted engines. */
export interface EngineExtras {
  /** GPUBackendService.Generate. */
  generate(
    request: GenerateRequest,
    context: HandlerContext,
  ): AsyncIterable<MessageInitShape<typeof GenerateResponseSchema>>;
  /** GPUBackendService.AnalyzeAudio. */
  analyzeAudio(
    requests: AsyncIterable<AnalyzeAudioRequest>,
    context: HandlerContext,
  ): Promise<{ analysis: MessageInitShape<typeof AudioAnalysisSchema> }>;
}

const KIND_NAMES: Partial<Record<AnalysisKind, EngineAnalysisKind>> = {
  [AnalysisKind.BASIC]: "basic",
  [AnalysisKind.PITCH]: "pitch",
  [AnalysisKind.GENDER]: "gender",
  [AnalysisKind.AGE]: "age",
};

const GENDERS: Record<NonNullable<EngineAnalysis["gender"]>, VoiceGender> = {
  female: VoiceGender.FEMALE,
  male: VoiceGender.MALE,
  neutral: VoiceGender.NEUTRAL,
};

/** Creates Generate and AnalyzeAudio for an engine host. */
export function createEngineExtras(options: EngineExtrasOptions): EngineExtras {
  const { engines, maxAudioBytes, enter, leave } = options;

  const textEngine = (model: string): TtsEngine => {
    const capable = engines.filter((e) => e.generate && (e.info.textModels ?? []).length > 0);
    if (capable.length === 0) {
      throw new ConnectError("no hosted engine runs a language model", Code.Unimplemented);
    }
    const engine = model
      ? capable.find((e) => e.info.textModels?.includes(model))
      : (capable[0] as TtsEngine);
    if (!engine) {
      const known = capable.flatMap((e) => e.info.textModels ?? []).join(", ");
      throw new ConnectError(
        `model "${model}" is not served here (models: ${known})`,
        Code.NotFound,
      );
    }
    return engine;
  };

  async function* generate(
    request: GenerateRequest,
    context: HandlerContext,
  ): AsyncIterable<MessageInitShape<typeof GenerateResponseSchema>> {
    if (request.messages.length === 0) {
      throw new ConnectError("messages is empty", Code.InvalidArgument);
    }
    const engine = textEngine(request.model);
    const run = engine.generate as NonNullable<TtsEngine["generate"]>;
    enter();
    try {
      const deltas = run.call(
        engine,
        {
          model: request.model || (engine.info.textModels?.[0] ?? ""),
          messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
          maxTokens: request.maxTokens,
          // proto floats are 32-bit: 0.2 arrives as 0.20000000298…; servers get what was meant.
          ...(request.temperature !== undefined
            ? { temperature: fromFloat32(request.temperature) }
            : {}),
          ...(request.topP !== undefined ? { topP: fromFloat32(request.topP) } : {}),
          stop: request.stop,
        },
        context.signal,
      );
      for await (const delta of deltas) {
        yield {
          textDelta: delta.text,
          finishReason: delta.finishReason ?? "",
          model: delta.model ?? "",
          promptTokens: delta.promptTokens ?? 0,
          completionTokens: delta.completionTokens ?? 0,
        };
      }
    } catch (err) {
      throw toEngineRpcError(err);
    } finally {
      leave();
    }
  }

  async function analyzeAudio(
    requests: AsyncIterable<AnalyzeAudioRequest>,
    context: HandlerContext,
  ): Promise<{ analysis: MessageInitShape<typeof AudioAnalysisSchema> }> {
    const iterator = requests[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done || first.value.kind.case !== "spec") {
      throw new ConnectError("the first message must be the spec", Code.InvalidArgument);
    }
    const spec = first.value.kind.value;
    const kinds = spec.kinds.flatMap((k) => (KIND_NAMES[k] ? [KIND_NAMES[k]] : []));
    const capable = engines.filter((e) => e.analyze && (e.info.analysisKinds ?? []).length > 0);
    const engine =
      capable.find((e) => kinds.every((k) => e.info.analysisKinds?.includes(k))) ?? capable[0];
    if (!engine) throw new ConnectError("no hosted engine analyzes audio", Code.Unimplemented);
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      if (next.value.kind.case !== "audio") {
        throw new ConnectError("only audio messages may follow the spec", Code.InvalidArgument);
      }
      total += next.value.kind.value.byteLength;
      if (total > maxAudioBytes) {
        throw new ConnectError(
          `audio exceeds this agent's limit of ${maxAudioBytes} bytes (VOXGATE_AGENT_MAX_REFERENCE_BYTES)`,
          Code.InvalidArgument,
        );
      }
      parts.push(next.value.kind.value);
    }
    if (total === 0) throw new ConnectError("no audio was sent", Code.InvalidArgument);
    enter();
    let result: EngineAnalysis;
    try {
      const analyze = engine.analyze as NonNullable<TtsEngine["analyze"]>;
      result = await analyze.call(
        engine,
        { audio: Buffer.concat(parts), contentType: spec.contentType, kinds },
        context.signal,
      );
    } catch (err) {
      throw toEngineRpcError(err);
    } finally {
      leave();
    }
    return { analysis: toAnalysisMessage(result, engine.info.id) };
  }

  return { generate, analyzeAudio };
}

/** The shortest decimal that is the same 32-bit float as `value`. */
function fromFloat32(value: number): number {
  for (let digits = 1; digits < 10; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === Math.fround(value)) return candidate;
  }
  return value;
}

/** An engine's figures in contract terms; what it did not measure stays unset. */
export function toAnalysisMessage(
  result: EngineAnalysis,
  analyzer: string,
): MessageInitShape<typeof AudioAnalysisSchema> {
  return {
    analyzer,
    ...(result.durationMs !== undefined
      ? { durationMs: BigInt(Math.round(result.durationMs)) }
      : {}),
    ...(result.loudnessLufs !== undefined ? { loudnessLufs: result.loudnessLufs } : {}),
    ...(result.medianF0Hz !== undefined ? { medianF0Hz: result.medianF0Hz } : {}),
    ...(result.gender ? { gender: GENDERS[result.gender] } : {}),
    ...(result.genderConfidence !== undefined ? { genderConfidence: result.genderConfidence } : {}),
    ...(result.ageYears !== undefined ? { ageYears: result.ageYears } : {}),
    ...(result.ageConfidence !== undefined ? { ageConfidence: result.ageConfidence } : {}),
    ...(result.features && Object.keys(result.features).length > 0
      ? { features: { ...result.features } }
      : {}),
  };
}
