import { FeatureSchema } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { BackendRegistry } from "../registry/index.js";
import { RelayError } from "./relay-error.js";

/**
 * Relay modes that only some backends can run (the Qwen3 adapter), by the capability a backend
 * declares for them: the `Feature` enum value `FEATURE_<CAPABILITY>` in its engine features.
 */
export const kRelayModes = {
  /** `POST /api/v1/voices/design`, `POST /api/v1/tts/design`: speech from a voice description. */
  voice_design: "voice design",
  /** `POST /api/v1/voices/design/batch`: several voice designs in one call. */
  voice_design_batch: "batch voice design",
  /** `POST /api/v1/voices/cast`: a character's emotion matrix. */
  voice_cast: "voice casting",
  /** `GET /api/v1/voices/emotions`: the emotion and mode presets of the model. */
  emotion_presets: "emotion presets",
  /** `POST /api/v1/tts/synthesize` with `ref_audio`: clone and speak in one call, nothing stored. */
  voice_clone_oneshot: "one-shot cloning",
  /** `POST /api/v1/audio/normalize`: formant normalization toward a reference. */
  audio_normalize: "audio normalization",
} as const;

/** A relay mode's capability name. */
export type RelayCapability = keyof typeof kRelayModes;

/** The `Feature` number a capability is declared with, or undefined while the enum lacks it. */
function featureOf(capability: RelayCapability): number | undefined {
  const name = `FEATURE_${capability.toUpperCase()}`;
  return FeatureSchema.values.find((v) => v.name === name)?.number;
}

/** Ids of the backends whose engines declare `capability`. */
export function backendsDeclaring(
  registry: BackendRegistry,
  capability: RelayCapability,
): string[] {
  const feature = featureOf(capability);
  if (feature === undefined) return [];
  return registry
    .list()
    .filter((b) => b.capabilities.engines.some((e) => e.features.includes(feature)))
    .map((b) => b.id);
}

/**
 * Refuses a mode call: 503 with the relay's error shape naming the capability when no connected
 * backend declares it; 501 when one does but this gateway cannot route the mode to it yet.
 */
export function refuseMode(registry: BackendRegistry, capability: RelayCapability): RelayError {
  const declaring = backendsDeclaring(registry, capability);
  if (declaring.length === 0) {
    return new RelayError(
      `no connected backend offers ${kRelayModes[capability]} (capability ${capability}); ` +
        "connect a backend that declares it (the Qwen3-TTS adapter)",
      503,
      "capability_missing",
      { capability },
    );
  }
  return new RelayError(
    `${kRelayModes[capability]} (capability ${capability}) is declared by ${declaring.join(", ")}, ` +
      "but this gateway does not route it yet",
    501,
    "unimplemented",
    { capability },
  );
}
