import type { TtsEngine } from "./tts-engine.js";

/** Engines an agent can host, by the name its `--engine` setting takes. */
export const ENGINE_KINDS = ["espeak"] as const;

/** An engine name accepted by {@link createEngine}. */
export type EngineKind = (typeof ENGINE_KINDS)[number];

/** What {@link createEngine} needs to build any engine; each kind reads its own fields. */
export interface EngineSelection {
  /** Which engine. */
  kind: EngineKind;
  /** Calls the engine runs at once (the agent's slots). */
  workers: number;
}

/**
 * Builds the selected engine. Engine modules are imported on demand so an agent loads only the
 * engine it runs (espeak-ng's GPL code is never loaded unless chosen).
 */
export async function createEngine(selection: EngineSelection): Promise<TtsEngine> {
  switch (selection.kind) {
    case "espeak": {
      const { createEspeakEngine } = await import("./espeak/index.js");
      return createEspeakEngine({ workers: selection.workers });
    }
  }
}
