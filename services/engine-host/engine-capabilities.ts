import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type Capabilities,
  CapabilitiesSchema,
  type EngineInfoSchema,
  Feature,
  VoiceGender,
} from "../../gen/voxgate/v1/capabilities_pb.js";
import type { EngineInfo, TtsEngine } from "../engines/tts-engine.js";

/**
 * Describes hosted engines in contract terms, for hello messages and Health.
 *
 * An engine that speaks is one entry (synthesis, cloning, and analysis when it has some). An
 * engine that only analyzes is one entry with the analysis features. Each language model an engine
 * runs is one more entry with the engine's id, the model's name as model family and
 * FEATURE_GENERATE_TEXT, so the registry routes text generation by model name as it routes clone
 * prompts by model.
 */
export function describeEngines(engines: readonly TtsEngine[], slots: number): Capabilities {
  return create(CapabilitiesSchema, {
    slots,
    engines: engines.flatMap(({ info }) => describeEngine(info)),
  });
}

function describeEngine(info: EngineInfo): Array<MessageInitShape<typeof EngineInfoSchema>> {
  const out: Array<MessageInitShape<typeof EngineInfoSchema>> = [];
  const analysis = analysisFeatures(info);
  const speaks = info.speaks !== false;
  if (speaks || analysis.length > 0) {
    const features: Feature[] = [];
    if (speaks) features.push(Feature.SYNTHESIZE);
    if (speaks && info.supportsCloning) {
      features.push(Feature.CLONE_PROMPT_CREATE, Feature.CLONE_PROMPT_SYNTHESIZE);
    }
    if (speaks && info.modes?.includes("voice_design")) features.push(Feature.VOICE_DESIGN);
    features.push(...analysis);
    out.push({
      id: info.id,
      version: info.version,
      model: { family: info.modelFamily, size: info.modelSize },
      features,
      sampleRateHz: speaks ? info.format.sampleRateHz : 0,
      voices: speaks
        ? info.voices.map((voice) => ({
            id: voice.id,
            name: voice.name,
            languages: voice.languages,
            gender:
              voice.gender === "female"
                ? VoiceGender.FEMALE
                : voice.gender === "male"
                  ? VoiceGender.MALE
                  : VoiceGender.UNSPECIFIED,
          }))
        : [],
    });
  }
  for (const model of info.textModels ?? []) {
    out.push({
      id: info.id,
      version: info.version,
      model: { family: model, size: "" },
      features: [Feature.GENERATE_TEXT],
      sampleRateHz: 0,
      voices: [],
    });
  }
  return out;
}

/** ANALYZE for duration/loudness/pitch, CLASSIFY_SPEAKER for gender/age classifiers. */
function analysisFeatures(info: EngineInfo): Feature[] {
  const kinds = info.analysisKinds ?? [];
  const features: Feature[] = [];
  if (kinds.includes("basic") || kinds.includes("pitch")) features.push(Feature.ANALYZE);
  if (kinds.includes("gender") || kinds.includes("age")) features.push(Feature.CLASSIFY_SPEAKER);
  return features;
}
