/**
 * A fake of the predecessor's Qwen3-TTS RunPod worker (`server/runpod_handler.py` of
 * `decay256/qwen3-tts-server`), written from its route table: input `{endpoint, body, api_key}`;
 * `/api/v1/voices/clone-prompt` (`{audio, name, ref_text}` → `{status: "created", name}`, the
 * prompt kept by name in the worker's store), `/api/v1/tts/clone-prompt` (`{voice_prompt, text}`
 * → `{audio, duration_s, format: "wav"}`, or `{error: "Prompt '<name>' not found"}`),
 * `/api/v1/voices/design` and `/api/v1/status`; errors are `{error}` in a COMPLETED job. Prompts
 * are made as the fake Qwen3 local server makes them (same bytes from the same reference), so a
 * test can tell the worker speaks the very voice cloned elsewhere.
 */
import { createHash } from "node:crypto";
import { encodeWavHeader } from "../../services/audio/wav.js";
import { FAKE_PROMPT_MAGIC } from "../model-servers/fake-qwen3-tts-server.js";
import { speechPcm } from "../model-servers/tone.js";
import type { WorkerHandler } from "./tts-worker.js";

/** What the fake worker holds and saw. */
export interface Qwen3V1Worker {
  /** The handler to give the emulator. */
  handler: WorkerHandler;
  /** Every job input, in order. */
  inputs: Array<Record<string, unknown>>;
  /** The worker's prompt store, by name. */
  prompts: Map<string, Uint8Array>;
  /** The PCM it speaks for `text` with prompt bytes `prompt`. */
  expectedPromptPcm(text: string, prompt: Uint8Array): Uint8Array;
}

/** Creates the fake worker; `apiKey` is its own `API_KEY` (empty: none). */
export function createQwen3V1Worker(
  options: { apiKey?: string; sampleRateHz?: number } = {},
): Qwen3V1Worker {
  const sampleRateHz = options.sampleRateHz ?? 24_000;
  const inputs: Array<Record<string, unknown>> = [];
  const prompts = new Map<string, Uint8Array>();
  const promptKey = (prompt: Uint8Array) =>
    `prompt:${createHash("sha256").update(prompt).digest("hex")}`;
  const audio = (pcm: Uint8Array) => ({
    audio: Buffer.concat([
      encodeWavHeader({ sampleRateHz, channels: 1, dataBytes: pcm.byteLength }),
      pcm,
    ]).toString("base64"),
    duration_s: Math.round((pcm.byteLength / 2 / sampleRateHz) * 100) / 100,
    format: "wav",
  });
  const handler: WorkerHandler = async (input) => {
    const inp = (input ?? {}) as Record<string, unknown>;
    inputs.push(inp);
    if (options.apiKey && inp.api_key !== options.apiKey) return { error: "Invalid API key" };
    const endpoint = typeof inp.endpoint === "string" ? inp.endpoint : "/api/v1/status";
    const body = (inp.body ?? {}) as Record<string, unknown>;
    try {
      switch (endpoint) {
        case "/api/v1/status":
          return { status: "ok", models: ["base", "voice_design"] };
        case "/api/v1/voices/design":
          return audio(
            speechPcm(String(body.text), `design:${String(body.instruct)}`, sampleRateHz),
          );
        case "/api/v1/voices/clone-prompt": {
          const ref = Buffer.from(String(body.audio), "base64");
          const refText = typeof body.ref_text === "string" ? body.ref_text : "";
          const prompt = Buffer.concat([
            Buffer.from(FAKE_PROMPT_MAGIC),
            createHash("sha256").update(ref).update(refText).digest(),
          ]);
          prompts.set(String(body.name), new Uint8Array(prompt));
          return { status: "created", name: body.name };
        }
        case "/api/v1/tts/clone-prompt": {
          const name = String(body.voice_prompt);
          const prompt = prompts.get(name);
          if (!prompt) return { error: `Prompt '${name}' not found` };
          return audio(speechPcm(String(body.text), promptKey(prompt), sampleRateHz));
        }
        default:
          return { error: `Unknown endpoint: ${endpoint}` };
      }
    } catch (err) {
      return { error: String(err) };
    }
  };
  return {
    handler,
    inputs,
    prompts,
    expectedPromptPcm: (text, prompt) => speechPcm(text, promptKey(prompt), sampleRateHz),
  };
}
