import { z } from "zod";
import { Feature } from "../../../gen/voxgate/v1/capabilities_pb.js";

/** Feature names as the config file spells them, mapped to the contract's enum. */
export const FEATURE_NAMES = {
  synthesize: Feature.SYNTHESIZE,
  clone_prompt_create: Feature.CLONE_PROMPT_CREATE,
  clone_prompt_synthesize: Feature.CLONE_PROMPT_SYNTHESIZE,
  analyze: Feature.ANALYZE,
  classify_speaker: Feature.CLASSIFY_SPEAKER,
  generate_text: Feature.GENERATE_TEXT,
  instructions: Feature.INSTRUCTIONS,
  voice_design: Feature.VOICE_DESIGN,
} as const;

const featureName = z.enum(Object.keys(FEATURE_NAMES) as [keyof typeof FEATURE_NAMES]);

const engineEntry = z.strictObject({
  id: z.string().min(1),
  version: z.string().default(""),
  model: z.strictObject({ family: z.string().min(1), size: z.string().default("") }),
  features: z.array(featureName).min(1),
  sampleRateHz: z.number().int().min(0).max(384_000).default(0),
  voices: z
    .array(
      z.strictObject({
        id: z.string().min(1),
        name: z.string().default(""),
        languages: z.array(z.string().min(1)).default([]),
        gender: z.enum(["female", "male", "neutral", ""]).default(""),
      }),
    )
    .default([]),
});

const runpodEntry = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
    error: "id must be 1-64 letters, digits, '.', '_' or '-'",
  }),
  kind: z.literal("runpod"),
  endpoint: z.url({ protocol: /^https?$/, error: "endpoint must be an http(s) URL" }),
  apiKeyEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
    error: "apiKeyEnv must name an environment variable",
  }),
  priority: z.number().int().min(-1000).max(1000).default(10),
  slots: z.number().int().min(1).max(10_000).default(4),
  engines: z.array(engineEntry).min(1),
  runsyncWaitMs: z.number().int().min(0).max(300_000).default(0),
  pollIntervalMinMs: z.number().int().min(10).max(60_000).default(100),
  pollIntervalMaxMs: z.number().int().min(10).max(60_000).default(1_000),
  maxJobDurationMs: z
    .number()
    .int()
    .min(1_000)
    .max(24 * 3_600_000)
    .default(600_000),
  maxAudioBytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024 * 1024)
    .default(64 * 1024 * 1024),
  requestTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  labels: z.record(z.string(), z.string()).default({}),
  // Job format of the endpoint's workers: voxgate's own, or the predecessor's Qwen3-TTS worker.
  format: z.enum(["voxgate", "qwen3-v1"]).default("voxgate"),
  // Variable holding the api_key a qwen3-v1 worker checks (its own API_KEY); optional.
  workerApiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
      error: "workerApiKeyEnv must name an environment variable",
    })
    .optional(),
});

/** The keys of a `backends` entry that have defaults, with them (for hand-built options: tests). */
export function serverlessEntryDefaults() {
  return runpodEntry
    .pick({
      priority: true,
      slots: true,
      runsyncWaitMs: true,
      pollIntervalMinMs: true,
      pollIntervalMaxMs: true,
      maxJobDurationMs: true,
      maxAudioBytes: true,
      requestTimeoutMs: true,
    })
    .parse({});
}

/** One static backend as written in the config file (`backends`), before its key is resolved. */
export type StaticBackendConfig = z.output<typeof runpodEntry>;

/**
 * Schema of the `backends` setting: a JSON array (or its text, from `VOXGATE_BACKENDS_JSON`) of
 * static backends. API keys are never accepted inline: `apiKeyEnv` names the variable that holds
 * one, so the file can be shared and logged.
 */
export const staticBackendsSchema: z.ZodType<StaticBackendConfig[]> = z.preprocess(
  (value, context) => {
    let parsed = value;
    if (typeof value === "string") {
      try {
        parsed = JSON.parse(value) as unknown;
      } catch (err) {
        context.addIssue({ code: "custom", message: `not valid JSON: ${(err as Error).message}` });
        return z.NEVER;
      }
    }
    if (Array.isArray(parsed)) {
      parsed.forEach((entry, index) => {
        if (entry && typeof entry === "object" && "apiKey" in entry) {
          context.addIssue({
            code: "custom",
            message: `backends[${index}]: API keys never go in the config; set apiKeyEnv to the name of an environment variable holding it`,
          });
        }
      });
    }
    return parsed;
  },
  z.array(runpodEntry).superRefine((entries, context) => {
    const seen = new Set<string>();
    entries.forEach((entry, index) => {
      if (seen.has(entry.id)) {
        context.addIssue({
          code: "custom",
          message: `backends[${index}]: duplicate id "${entry.id}"`,
        });
      }
      seen.add(entry.id);
      if (entry.pollIntervalMinMs > entry.pollIntervalMaxMs) {
        context.addIssue({
          code: "custom",
          message: `backends[${index}]: pollIntervalMinMs is above pollIntervalMaxMs`,
        });
      }
    });
  }),
) as unknown as z.ZodType<StaticBackendConfig[]>;
