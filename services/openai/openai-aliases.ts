import { z } from "zod";

/**
 * Where an OpenAI voice name speaks: one voice id for every engine (a string), or a voice id per
 * engine id or model family (`{ "espeak-ng": "en-us+f3", "qwen3-tts": "Vivian" }`).
 */
export type VoiceAliasTarget = string | Readonly<Record<string, string>>;

/** OpenAI voice name (or any name a client sends as `voice`) → the voice it speaks with. */
export type VoiceAliases = Readonly<Record<string, VoiceAliasTarget>>;

/** Routing criteria a `model` name stands for: an engine id and/or a model family. */
export interface ModelAliasTarget {
  /** Engine id the call is restricted to, e.g. `espeak-ng`; absent means any. */
  engine?: string | undefined;
  /** Model family the call is restricted to, e.g. `qwen3-tts`; absent means any. */
  model?: string | undefined;
}

/** `model` name (e.g. `tts-1`, `tts-1-hd`) → the engine/model criteria it routes by. */
export type ModelAliases = Readonly<Record<string, ModelAliasTarget>>;

/**
 * The built-in table: each OpenAI voice speaks with a different espeak-ng voice (an English
 * accent, some with a voice variant: `+f…` female, `+m…` male), so callers that switch voices hear a
 * difference on the CPU engine. Other engines keep their default voice unless configured.
 */
export const DEFAULT_VOICE_ALIASES: VoiceAliases = {
  alloy: { "espeak-ng": "en-us" },
  ash: { "espeak-ng": "en-us-nyc" },
  ballad: { "espeak-ng": "en-gb-scotland" },
  coral: { "espeak-ng": "en-029+f2" },
  echo: { "espeak-ng": "en-gb-x-rp+m3" },
  fable: { "espeak-ng": "en-gb" },
  onyx: { "espeak-ng": "en-us+m7" },
  nova: { "espeak-ng": "en-us+f3" },
  sage: { "espeak-ng": "en-gb-x-rp+f5" },
  shimmer: { "espeak-ng": "en-us+f4" },
  verse: { "espeak-ng": "en-gb-x-gbcwmd" },
  marin: { "espeak-ng": "en-us+f1" },
  cedar: { "espeak-ng": "en-gb-x-gbclan" },
};

const NAME = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$/, {
  error: "names are 1-128 letters, digits and ._:+- (starting with a letter or digit)",
});

/** Schema of the voice alias setting (JSON object). */
export const voiceAliasesSchema: z.ZodType<VoiceAliases> = z.record(
  NAME,
  z.union([NAME, z.record(NAME, NAME)]),
);

/** Schema of the model alias setting (JSON object). */
export const modelAliasesSchema: z.ZodType<ModelAliases> = z.record(
  NAME,
  z
    .object({ engine: NAME.optional(), model: NAME.optional() })
    .strict()
    .refine((t) => t.engine !== undefined || t.model !== undefined, {
      error: 'a model alias names an "engine", a "model" (family) or both',
    }),
);

/** What {@link resolveVoiceAlias} needs to know of the call and the fleet. */
export interface VoiceAliasContext {
  /** Engine id the call is restricted to ("" = any). */
  engine: string;
  /** Model family the call is restricted to ("" = any). */
  family: string;
  /** Engine ids that speak now, each with its model family (to resolve a family to engines). */
  engines: ReadonlyMap<string, string>;
}

/**
 * The voice id `alias` speaks with on this call, or undefined when `alias` is no alias.
 *
 * A string target applies on every engine. A per-engine target applies when the call can only go
 * to one engine (pinned by `engine`, by a family with one engine, or because one engine speaks at
 * all) and the table names that engine or its family; the call is then sent there unchanged.
 * Otherwise (several engines could serve it, or the engine is not in the table) the alias speaks
 * with the engine's default voice (`""`): a per-engine voice id sent to another engine would fail.
 */
export function resolveVoiceAlias(
  aliases: VoiceAliases,
  alias: string,
  context: VoiceAliasContext,
): string | undefined {
  if (!Object.hasOwn(aliases, alias)) return undefined;
  const target = aliases[alias] as VoiceAliasTarget;
  if (typeof target === "string") return target;
  const candidates = [...context.engines].filter(
    ([engine, family]) =>
      (context.engine === "" || engine === context.engine) &&
      (context.family === "" || family === context.family),
  );
  const only = candidates.length === 1 ? candidates[0] : undefined;
  if (!only) return "";
  const [engine, family] = only;
  if (Object.hasOwn(target, engine)) return target[engine] as string;
  if (family && Object.hasOwn(target, family)) return target[family] as string;
  return "";
}
