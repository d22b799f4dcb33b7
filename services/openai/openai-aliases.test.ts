import { describe, expect, it } from "vitest";
import {
  DEFAULT_VOICE_ALIASES,
  modelAliasesSchema,
  resolveVoiceAlias,
  voiceAliasesSchema,
} from "./openai-aliases.js";
import { OPENAI_VOICES } from "./speech-request.js";

const fleet = new Map([
  ["espeak-ng", "espeak-ng"],
  ["qwen-engine", "qwen3-tts"],
]);
const espeakOnly = new Map([["espeak-ng", "espeak-ng"]]);

describe("DEFAULT_VOICE_ALIASES", () => {
  it("gives every OpenAI voice name its own espeak-ng voice", () => {
    const targets = [...OPENAI_VOICES].map((name) => {
      const target = DEFAULT_VOICE_ALIASES[name];
      expect(typeof target).toBe("object");
      return (target as Record<string, string>)["espeak-ng"];
    });
    expect(targets.every((t) => typeof t === "string" && t !== "")).toBe(true);
    expect(new Set(targets).size).toBe(OPENAI_VOICES.size);
  });

  it("passes its own schema", () => {
    expect(voiceAliasesSchema.parse(DEFAULT_VOICE_ALIASES)).toEqual(DEFAULT_VOICE_ALIASES);
  });
});

describe("resolveVoiceAlias", () => {
  const aliases = {
    nova: { "espeak-ng": "en-us+f3", "qwen3-tts": "Vivian" },
    echo: "en-gb",
  };

  it("leaves names that are no alias to be voice ids", () => {
    expect(
      resolveVoiceAlias(aliases, "en-us", { engine: "", family: "", engines: fleet }),
    ).toBeUndefined();
    // Not even inherited object members count.
    expect(
      resolveVoiceAlias(aliases, "toString", { engine: "", family: "", engines: fleet }),
    ).toBeUndefined();
  });

  it("applies a string target on every engine", () => {
    expect(resolveVoiceAlias(aliases, "echo", { engine: "", family: "", engines: fleet })).toBe(
      "en-gb",
    );
  });

  it("picks the per-engine voice once the call can go to one engine only", () => {
    const nova = (engine: string, family: string, engines = fleet) =>
      resolveVoiceAlias(aliases, "nova", { engine, family, engines });
    expect(nova("espeak-ng", "")).toBe("en-us+f3");
    // By family: the qwen engine is the one of family qwen3-tts.
    expect(nova("", "qwen3-tts")).toBe("Vivian");
    // One engine speaks at all.
    expect(nova("", "", espeakOnly)).toBe("en-us+f3");
    // Several engines could serve it: their default voice, never another engine's voice id.
    expect(nova("", "")).toBe("");
    // An engine the table leaves out.
    expect(nova("", "", new Map([["kokoro", "kokoro"]]))).toBe("");
  });
});

describe("alias schemas", () => {
  it("refuses a model alias without criteria and unknown keys", () => {
    expect(modelAliasesSchema.safeParse({ "tts-1": {} }).success).toBe(false);
    expect(modelAliasesSchema.safeParse({ "tts-1": { engin: "x" } }).success).toBe(false);
    expect(modelAliasesSchema.parse({ "tts-1": { engine: "espeak-ng" } })).toEqual({
      "tts-1": { engine: "espeak-ng" },
    });
  });

  it("refuses voice ids that are no names", () => {
    expect(voiceAliasesSchema.safeParse({ nova: "has space" }).success).toBe(false);
    expect(voiceAliasesSchema.safeParse({ nova: { "espeak-ng": 3 } }).success).toBe(false);
  });
});
