import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { RegisteredBackend } from "../registry/index.js";
import { OPENAI_SPEECH_MODELS, type SpeechModelCatalog } from "./speech-request.js";

/** What the model list needs to know of a backend. */
export type ModelSource = Pick<RegisteredBackend, "id" | "state" | "capabilities" | "connectedAt">;

/** One entry of `GET /v1/models`, in OpenAI's shape. */
export interface OpenAiModel {
  /** Model id to pass as `model`. */
  id: string;
  /** Always `model`. */
  object: "model";
  /** When it became available, in Unix seconds (the earliest backend offering it joined then). */
  created: number;
  /** Who offers it: `voxgate` for the OpenAI aliases, else the first backend's id. */
  owned_by: string;
}

/**
 * The engines and model families that synthesis can be routed to now: those of backends that are
 * not gone, whose engines offer synthesis.
 */
export function speechModelCatalog(backends: readonly ModelSource[]): SpeechModelCatalog {
  const engines = new Set<string>();
  const families = new Set<string>();
  for (const backend of live(backends)) {
    for (const engine of backend.capabilities.engines) {
      if (!engine.features.includes(Feature.SYNTHESIZE)) continue;
      engines.add(engine.id);
      if (engine.model?.family) families.add(engine.model.family);
    }
  }
  return { engines, families };
}

/** Engine ids that can synthesize now, each with its model family ("" when it names none). */
export function speakingEngines(backends: readonly ModelSource[]): Map<string, string> {
  const engines = new Map<string, string>();
  for (const backend of live(backends)) {
    for (const engine of backend.capabilities.engines) {
      if (!engine.features.includes(Feature.SYNTHESIZE) || engine.id === "") continue;
      if (!engines.has(engine.id)) engines.set(engine.id, engine.model?.family ?? "");
    }
  }
  return engines;
}

/**
 * The `GET /v1/models` list: OpenAI's speech model names (any engine) and the configured model
 * aliases (`aliasNames`) while at least one backend can synthesize, then every engine id and model
 * family, sorted.
 */
export function listSpeechModels(
  backends: readonly ModelSource[],
  aliasNames: readonly string[] = [],
): OpenAiModel[] {
  const models = new Map<string, OpenAiModel>();
  const add = (id: string, since: Date, owner: string) => {
    const created = Math.floor(since.getTime() / 1000);
    const known = models.get(id);
    if (!known || created < known.created) {
      models.set(id, { id, object: "model", created, owned_by: owner });
    }
  };
  const found: OpenAiModel[] = [];
  for (const backend of live(backends)) {
    for (const engine of backend.capabilities.engines) {
      if (!engine.features.includes(Feature.SYNTHESIZE)) continue;
      add(engine.id, backend.connectedAt, backend.id);
      if (engine.model?.family) add(engine.model.family, backend.connectedAt, backend.id);
    }
  }
  const own = [...models.values()].sort((a, b) => a.id.localeCompare(b.id));
  const earliest = Math.min(...own.map((m) => m.created));
  for (const id of new Set([...OPENAI_SPEECH_MODELS, ...aliasNames])) {
    if (own.length > 0 && !models.has(id)) {
      found.push({ id, object: "model", created: earliest, owned_by: "voxgate" });
    }
  }
  return [...found, ...own];
}

function live(backends: readonly ModelSource[]) {
  return backends.filter((b) => b.state !== BackendState.REMOVED);
}
