import type { Logger } from "pino";
import type { ModelServerSettings } from "./model-server/model-server-engine.js";
import type { TtsEngine } from "./tts-engine.js";

/** Engines an agent can host, by the name its `--engine` setting takes. */
export const ENGINE_KINDS = [
  "espeak",
  "echo",
  "openai-http",
  "qwen3-http",
  "openai-llm",
  "tinybox-http",
] as const;

/** An engine name accepted by {@link createEngines}. */
export type EngineKind = (typeof ENGINE_KINDS)[number];

/** What {@link createEngines} needs to build any engine; each kind reads its own fields. */
export interface EngineSelection {
  /** Which engine. */
  kind: EngineKind;
  /** Calls the engine runs at once (the agent's slots). */
  workers: number;
  /** The model server of `openai-http` and `qwen3-http` (its URL is required for them). */
  modelServer?: ModelServerSettings;
  /** Language models an `openai-llm` server runs (empty: read from its `GET /v1/models`). */
  llmModels?: readonly string[];
  /** Logger for the engine's own start-up and worker events. */
  log?: Logger;
}

/**
 * Builds the engines of the selected kind (one for most kinds; a node that runs several models
 * gives one per model). Engine modules are imported on demand so an agent loads only the engine it
 * runs (espeak-ng's GPL code is never loaded unless chosen).
 */
export async function createEngines(selection: EngineSelection): Promise<TtsEngine[]> {
  if (selection.kind === "tinybox-http") {
    const { createTinyboxEnginesFromSettings } = await import("./model-server/index.js");
    return createTinyboxEnginesFromSettings(
      selection.modelServer,
      selection.llmModels ?? [],
      selection.log,
    );
  }
  return [await createEngine(selection)];
}

async function createEngine(selection: EngineSelection): Promise<TtsEngine> {
  switch (selection.kind) {
    case "espeak": {
      const { createEspeakEngine } = await import("./espeak/index.js");
      return createEspeakEngine({
        workers: selection.workers,
        ...(selection.log ? { log: selection.log } : {}),
      });
    }
    case "echo": {
      // Synthetic bytes for benchmarks: measures the relay, not a model.
      const { createEchoEngine } = await import("./echo/index.js");
      return createEchoEngine();
    }
    case "openai-http":
    case "qwen3-http": {
      // A model server on the GPU host does the work; the agent only forwards over HTTP.
      const { createModelServerEngine } = await import("./model-server/index.js");
      return createModelServerEngine(selection.kind, selection.modelServer, selection.log);
    }
    case "tinybox-http":
      throw new Error("tinybox-http builds several engines: use createEngines");
    case "openai-llm": {
      const { createOpenAiLlmEngineFromSettings } = await import("./model-server/index.js");
      return createOpenAiLlmEngineFromSettings(
        selection.modelServer,
        selection.llmModels ?? [],
        selection.log,
      );
    }
  }
}
