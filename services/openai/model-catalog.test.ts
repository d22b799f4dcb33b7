import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { CapabilitiesSchema, Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import { listSpeechModels, type ModelSource, speechModelCatalog } from "./model-catalog.js";

function backend(
  id: string,
  connectedAt: Date,
  engines: { id: string; family: string; features: Feature[] }[],
  state = BackendState.READY,
): ModelSource {
  return {
    id,
    state,
    connectedAt,
    capabilities: create(CapabilitiesSchema, {
      slots: 1,
      engines: engines.map((e) => ({
        id: e.id,
        model: { family: e.family },
        features: e.features,
      })),
    }),
  };
}

const early = new Date("2026-01-01T00:00:00Z");
const late = new Date("2026-02-01T00:00:00Z");
const backends = [
  backend("b-late", late, [
    { id: "espeak-ng", family: "espeak-ng", features: [Feature.SYNTHESIZE] },
  ]),
  backend("a-early", early, [
    { id: "qwen", family: "qwen3-tts", features: [Feature.SYNTHESIZE] },
    { id: "analyzer", family: "wav2vec", features: [Feature.ANALYZE] },
  ]),
  backend(
    "gone",
    early,
    [{ id: "old", family: "old", features: [Feature.SYNTHESIZE] }],
    BackendState.REMOVED,
  ),
];

describe("speechModelCatalog", () => {
  it("collects synthesis engines and families of backends still there", () => {
    const catalog = speechModelCatalog(backends);
    expect([...catalog.engines].sort()).toEqual(["espeak-ng", "qwen"]);
    expect([...catalog.families].sort()).toEqual(["espeak-ng", "qwen3-tts"]);
  });
});

describe("listSpeechModels", () => {
  it("lists OpenAI's names, then each engine and family once, with the earliest backend's time", () => {
    const models = listSpeechModels(backends);
    expect(models.map((m) => m.id)).toEqual([
      "tts-1",
      "tts-1-hd",
      "gpt-4o-mini-tts",
      "gpt-4o-mini-tts-2025-12-15",
      "espeak-ng",
      "qwen",
      "qwen3-tts",
    ]);
    expect(models.find((m) => m.id === "espeak-ng")).toEqual({
      id: "espeak-ng",
      object: "model",
      created: late.getTime() / 1000,
      owned_by: "b-late",
    });
    expect(models[0]).toEqual({
      id: "tts-1",
      object: "model",
      created: early.getTime() / 1000,
      owned_by: "voxgate",
    });
  });

  it("lists nothing while no backend can synthesize", () => {
    expect(listSpeechModels([])).toEqual([]);
    expect(listSpeechModels([backends[2] as ModelSource])).toEqual([]);
  });
});
