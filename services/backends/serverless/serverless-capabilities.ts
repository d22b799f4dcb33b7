import { create } from "@bufbuild/protobuf";
import {
  type Capabilities,
  CapabilitiesSchema,
  VoiceGender,
} from "../../../gen/voxgate/v1/capabilities_pb.js";
import { FEATURE_NAMES, type StaticBackendConfig } from "./serverless-config.js";

/** An engine a serverless endpoint runs, as declared in the config (its workers cannot say). */
export type ServerlessEngineDeclaration = StaticBackendConfig["engines"][number];

const GENDERS = {
  female: VoiceGender.FEMALE,
  male: VoiceGender.MALE,
  neutral: VoiceGender.NEUTRAL,
  "": VoiceGender.UNSPECIFIED,
} as const;

/** Describes declared engines in contract terms, for the registry and Health. */
export function describeServerlessEngines(
  engines: readonly ServerlessEngineDeclaration[],
  slots: number,
): Capabilities {
  return create(CapabilitiesSchema, {
    slots,
    engines: engines.map((engine) => ({
      id: engine.id,
      version: engine.version,
      model: { family: engine.model.family, size: engine.model.size },
      features: engine.features.map((name) => FEATURE_NAMES[name]),
      sampleRateHz: engine.sampleRateHz,
      voices: engine.voices.map((voice) => ({
        id: voice.id,
        name: voice.name,
        languages: voice.languages,
        gender: GENDERS[voice.gender],
      })),
    })),
  });
}
