import { create } from "@bufbuild/protobuf";
import {
  type Capabilities,
  CapabilitiesSchema,
  Feature,
  VoiceGender,
} from "../../gen/voxgate/v1/capabilities_pb.js";
import type { TtsEngine } from "../engines/tts-engine.js";

/** Describes hosted engines in contract terms, for hello messages and Health. */
export function describeEngines(engines: readonly TtsEngine[], slots: number): Capabilities {
  return create(CapabilitiesSchema, {
    slots,
    engines: engines.map(({ info }) => ({
      id: info.id,
      version: info.version,
      model: { family: info.modelFamily, size: info.modelSize },
      features: info.supportsCloning
        ? [Feature.SYNTHESIZE, Feature.CLONE_PROMPT_CREATE, Feature.CLONE_PROMPT_SYNTHESIZE]
        : [Feature.SYNTHESIZE],
      sampleRateHz: info.format.sampleRateHz,
      voices: info.voices.map((voice) => ({
        id: voice.id,
        name: voice.name,
        languages: voice.languages,
        gender:
          voice.gender === "female"
            ? VoiceGender.FEMALE
            : voice.gender === "male"
              ? VoiceGender.MALE
              : VoiceGender.UNSPECIFIED,
      })),
    })),
  });
}
