import { create } from "@bufbuild/protobuf";
import type { AgentHello } from "../../gen/voxgate/v1/agent_pb.js";
import { type Capabilities, CapabilitiesSchema } from "../../gen/voxgate/v1/capabilities_pb.js";
import { gatewaySettings } from "../gateway/gateway-settings.js";

/** What the gateway lets an agent claim about itself in its hello. */
export interface AgentHelloLimits {
  /** Most slots (concurrent calls) an agent may claim; more are cut to it. @default setting agentMaxSlots */
  maxSlots: number;
  /**
   * Least routing priority an agent may claim (lower is preferred, so this bounds how strongly
   * one agent can pull work to itself); lower claims are raised to it. @default setting agentMinPriority
   */
  minPriority: number;
  /** Greatest routing priority; higher claims are lowered to it. @default setting agentMaxPriority */
  maxPriority: number;
  /** Most preset voices one agent may list, over all its engines; the rest are dropped. @default setting agentMaxVoices */
  maxVoices: number;
}

/** Defaults of {@link AgentHelloLimits}. */
export const defaultAgentHelloLimits: AgentHelloLimits = {
  maxSlots: gatewaySettings.agentMaxSlots.defaultValue,
  minPriority: gatewaySettings.agentMinPriority.defaultValue,
  maxPriority: gatewaySettings.agentMaxPriority.defaultValue,
  maxVoices: gatewaySettings.agentMaxVoices.defaultValue,
};

/** Most engines one agent may list. */
const MAX_ENGINES = 64;
/** Most labels one agent may carry. */
const MAX_LABELS = 32;
/** Longest id, name, version, label key or value an agent may send, in characters. */
const MAX_TEXT_CHARS = 128;
/** Most languages one voice may list. */
const MAX_LANGUAGES = 16;

/** A hello made safe to register, or why it is refused. */
export type CheckedHello =
  | {
      ok: true;
      /** A copy of the capabilities within the limits (the agent's message is left alone). */
      capabilities: Capabilities;
      /** The priority within the operator's range. */
      priority: number;
      /** The labels, capped. */
      labels: Record<string, string>;
      /** The version, capped. */
      version: string;
      /** What was changed, one phrase each (logged): empty when the hello was within limits. */
      adjustments: string[];
    }
  | { ok: false; reason: string };

/**
 * Checks an agent's hello: agents are untrusted, so what they claim is held to the operator's
 * limits before the registry routes by it. Slots are clamped to 1..`maxSlots` (an agent claiming
 * 2³¹−1 slots would otherwise take every call), priority to the operator's range (−100 would
 * win all routing), preset voices are capped over all engines (20,000 voices made the OpenAI
 * voice list a 4.8 MB answer), and engines, labels and texts are bounded. Refuses a hello with
 * no engine or an engine without an id. Every adjustment is reported, so it can be logged.
 */
export function checkAgentHello(hello: AgentHello, limits: AgentHelloLimits): CheckedHello {
  const claimed = hello.capabilities;
  if (!claimed || claimed.engines.length === 0)
    return { ok: false, reason: "hello lists no engines" };
  const adjustments: string[] = [];
  const clip = (text: string) => text.slice(0, MAX_TEXT_CHARS);

  const slots = Math.min(Math.max(claimed.slots, 1), limits.maxSlots);
  if (slots !== claimed.slots) {
    adjustments.push(
      `slots ${claimed.slots} → ${slots} (1..${limits.maxSlots}; max agent slots: VOXGATE_AGENT_MAX_SLOTS)`,
    );
  }
  const priority = Math.min(Math.max(hello.priority, limits.minPriority), limits.maxPriority);
  if (priority !== hello.priority) {
    adjustments.push(
      `priority ${hello.priority} → ${priority} (${limits.minPriority}..${limits.maxPriority}; ` +
        "VOXGATE_AGENT_MIN_PRIORITY, VOXGATE_AGENT_MAX_PRIORITY, or the agent token's " +
        "agentMinPriority/agentMaxPriority)",
    );
  }
  if (claimed.engines.length > MAX_ENGINES) {
    adjustments.push(`${claimed.engines.length} engines → ${MAX_ENGINES}`);
  }
  let voicesLeft = limits.maxVoices;
  let voicesClaimed = 0;
  const engines = [];
  for (const engine of claimed.engines.slice(0, MAX_ENGINES)) {
    if (!engine.id) return { ok: false, reason: "an engine has no id" };
    voicesClaimed += engine.voices.length;
    const voices = engine.voices.slice(0, Math.max(0, voicesLeft)).map((voice) => ({
      ...voice,
      id: clip(voice.id),
      name: clip(voice.name),
      languages: voice.languages.slice(0, MAX_LANGUAGES).map(clip),
    }));
    voicesLeft -= voices.length;
    engines.push({
      ...engine,
      id: clip(engine.id),
      version: clip(engine.version),
      ...(engine.model
        ? {
            model: {
              ...engine.model,
              family: clip(engine.model.family),
              size: clip(engine.model.size),
            },
          }
        : {}),
      voices,
    });
  }
  if (voicesClaimed > limits.maxVoices) {
    adjustments.push(
      `${voicesClaimed} preset voices → ${limits.maxVoices} (max agent voices: VOXGATE_AGENT_MAX_VOICES)`,
    );
  }
  const labelEntries = Object.entries(hello.labels);
  if (labelEntries.length > MAX_LABELS) {
    adjustments.push(`${labelEntries.length} labels → ${MAX_LABELS}`);
  }
  const labels = Object.fromEntries(
    labelEntries.slice(0, MAX_LABELS).map(([key, value]) => [clip(key), clip(value)]),
  );
  return {
    ok: true,
    capabilities: create(CapabilitiesSchema, { engines, slots }),
    priority,
    labels,
    version: clip(hello.version),
    adjustments,
  };
}
