/**
 * Relay modes routed to a backend that declares them: an agent process with the qwen3-http engine
 * (FEATURE_VOICE_DESIGN) in front of a fake of the predecessor's local server. Voice design, design
 * with a prompt made from the clip, and batch design, as the yaml and the web backend send them;
 * the designed clip is the model server's own audio, and the prompt made from it speaks by name.
 * Modes no backend declares still answer 503 naming the capability.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeQwen3TtsServer, startFakeQwen3TtsServer } from "../model-servers/index.js";
import { type RelayStack, startRelayStack } from "./relay-stack.js";

let stack: RelayStack;
let fake: FakeQwen3TtsServer;
let dir = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "voxgate-relay-modes-"));
  fake = await startFakeQwen3TtsServer({ promptsDir: join(dir, "prompts") });
  stack = await startRelayStack({
    agents: {
      "qwen-relay": {
        VOXGATE_AGENT_ENGINE: "qwen3-http",
        VOXGATE_AGENT_ENGINE_URL: fake.url,
        VOXGATE_AGENT_ENGINE_MODEL_SIZE: "1.7b",
        VOXGATE_AGENT_ENGINE_PROMPTS_DIR: fake.promptsDir,
        VOXGATE_AGENT_PROMPT_CACHE_DIR: join(dir, "cache"),
      },
    },
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const post = (path: string, body: unknown) =>
  stack.fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** PCM of a WAV answer (after the 44-byte header the fake and the gateway write). */
const pcmOf = (b64: string) => Buffer.from(b64, "base64").subarray(44);

describe("relay modes on a backend that declares them", () => {
  it("POST /api/v1/voices/design answers the model server's designed clip as JSON", async () => {
    const res = await post("/api/v1/voices/design", {
      text: "Hello there.",
      instruct: "A warm, low voice",
      language: "English",
      format: "wav",
    });
    const json = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(json)).toBe(200);
    expect(json).toMatchObject({ format: "wav", sample_rate: 24000 });
    expect(json.duration_s).toBeGreaterThan(0);
    expect(
      pcmOf(String(json.audio)).equals(
        Buffer.from(fake.expectedDesignPcm("Hello there.", "A warm, low voice")),
      ),
    ).toBe(true);
    const sent = fake.requests.find((r) => r.path === "/api/v1/voices/design");
    expect(sent?.body).toMatchObject({ text: "Hello there.", instruct: "A warm, low voice" });
  }, 60_000);

  it("create_prompt saves the designed clip as a named prompt that then speaks", async () => {
    const res = await post("/api/v1/voices/design", {
      text: "I am Maya.",
      instruct: "A bright young voice",
      create_prompt: true,
      prompt_name: "maya-designed",
      tags: ["maya"],
    });
    const json = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(json)).toBe(200);
    expect(json).toMatchObject({ prompt_created: true, prompt_name: "maya-designed" });

    const listed = (await (await stack.fetch("/api/v1/voices/prompts?tags=maya")).json()) as {
      prompts: Array<Record<string, unknown>>;
    };
    expect(listed.prompts).toHaveLength(1);
    expect(listed.prompts[0]).toMatchObject({
      name: "maya-designed",
      ref_text: "I am Maya.",
      instruct: "A bright young voice",
      model: "qwen3-tts",
      model_size: "1.7b",
    });

    const spoken = await post("/api/v1/tts/clone-prompt", {
      voice_prompt: "maya-designed",
      text: "Speaking by name.",
    });
    const audio = (await spoken.json()) as Record<string, unknown>;
    expect(spoken.status, JSON.stringify(audio)).toBe(200);
    expect(pcmOf(String(audio.audio)).byteLength).toBeGreaterThan(0);
    expect(fake.promptsReceived.length).toBeGreaterThan(0);
  }, 120_000);

  it("POST /api/v1/voices/design/batch designs each item and makes prompts with the prefix", async () => {
    const res = await post("/api/v1/voices/design/batch", {
      items: [
        {
          name: "ben_neutral",
          text: "Hi.",
          instruct: "calm",
          character: "Ben",
          emotion: "neutral",
        },
        { name: "ben_angry", text: "No!", instruct: "angry", character: "Ben", emotion: "angry" },
        { name: "broken", text: "Missing instruct." },
      ],
      format: "wav",
      create_prompts: true,
      tags_prefix: ["ben"],
    });
    const json = (await res.json()) as {
      results: Array<Record<string, unknown>>;
      total: number;
      succeeded: number;
    };
    expect(res.status, JSON.stringify(json).slice(0, 300)).toBe(200);
    expect(json.total).toBe(3);
    expect(json.succeeded).toBe(2);
    expect(json.results[0]).toMatchObject({
      name: "ben_neutral",
      status: "ok",
      prompt_created: true,
    });
    expect(json.results[2]).toMatchObject({ name: "broken", status: "error" });
    const characters = (await (await stack.fetch("/api/v1/voices/characters")).json()) as {
      characters: Array<Record<string, unknown>>;
    };
    expect(characters.characters).toContainEqual({
      character: "Ben",
      prompt_count: 2,
      emotions: ["angry", "neutral"],
      modes: [],
    });
  }, 60_000);

  it("POST /api/v1/tts/design {text, description} answers the clip and the description", async () => {
    const res = await post("/api/v1/tts/design", { text: "Hi.", description: "A deep voice" });
    const json = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(json)).toBe(200);
    expect(json).toMatchObject({ description: "A deep voice", format: "wav" });
  }, 60_000);

  it("a mode no backend declares is still 503 naming the capability", async () => {
    const res = await post("/api/v1/voices/cast", { character: "Ben", description: "A man" });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ capability: "voice_cast" });
  });
});
