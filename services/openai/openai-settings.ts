import { z } from "zod";
import { boolSetting, setting } from "../config/settings.js";
import {
  type ModelAliases,
  modelAliasesSchema,
  type VoiceAliases,
  voiceAliasesSchema,
} from "./openai-aliases.js";

/** A JSON object setting: the environment gives a JSON string, a config file the object itself. */
function jsonObject<T>(schema: z.ZodType<T>): z.ZodType<T> {
  return z.preprocess((value, context) => {
    if (typeof value !== "string") return value;
    try {
      return JSON.parse(value) as unknown;
    } catch (err) {
      context.addIssue({ code: "custom", message: `not valid JSON: ${(err as Error).message}` });
      return z.NEVER;
    }
  }, schema) as z.ZodType<T>;
}

/**
 * Settings of the OpenAI-compatible API (README: "OpenAI-compatible API"); part of the gateway's
 * settings table.
 */
export const openAiSettings = {
  openaiVoiceAliases: setting({
    key: "openaiVoiceAliases",
    flag: undefined,
    env: "VOXGATE_OPENAI_VOICE_ALIASES_JSON",
    description:
      'OpenAI voice names → voice ids: {"nova":"en-us+f3"} or per engine/family {"nova":{"qwen3-tts":"Vivian"}}; merged over the built-in table name by name',
    schema: jsonObject(voiceAliasesSchema),
    defaultValue: {} as VoiceAliases,
  }),
  openaiModelAliases: setting({
    key: "openaiModelAliases",
    flag: undefined,
    env: "VOXGATE_OPENAI_MODEL_ALIASES_JSON",
    description:
      'model names → routing criteria: {"tts-1":{"engine":"espeak-ng"},"tts-1-hd":{"model":"qwen3-tts"}} ({} = OpenAI names mean any engine)',
    schema: jsonObject(modelAliasesSchema),
    defaultValue: {} as ModelAliases,
  }),
  openaiPublicVoiceList: setting({
    key: "openaiPublicVoiceList",
    flag: "openai-public-voice-list",
    env: "VOXGATE_OPENAI_PUBLIC_VOICE_LIST",
    description:
      "GET /v1/audio/voices and /v1/audio/models answer without a token (preset voices only), as Open WebUI asks",
    schema: boolSetting,
    defaultValue: false,
  }),
};
