/**
 * An engine that forwards to the Qwen3-TTS local server of the design seed (port 9700 on the GPU
 * host): preset-voice synthesis, clone-prompt creation (the server's `.pt` file) and synthesis
 * with a clone prompt, whose bytes travel in each request so the server needs no shared storage.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { EngineInputError, SynthesisFailedError, UnknownVoiceError } from "../engine-errors.js";
import type {
  EngineAudioChunk,
  EngineClonePromptResult,
  EngineCloneRequest,
  EngineInfo,
  EngineSynthesisRequest,
  TtsEngine,
} from "../tts-engine.js";
import {
  connectModelServer,
  createEngineCalls,
  type ModelServerConnectionOptions,
} from "./model-server-base.js";
import type { ModelServerResponse } from "./model-server-client.js";
import { readPcmStream } from "./pcm-stream.js";
import { QWEN3_WIRE } from "./wire-fields.js";

/** Engine id of {@link createQwen3TtsEngine}. */
export const QWEN3_ENGINE_ID = "qwen3-tts";

/** Options of {@link createQwen3TtsEngine}. */
export interface Qwen3TtsEngineOptions extends ModelServerConnectionOptions {
  /** Base URL of the local server, e.g. `http://127.0.0.1:9700`. */
  baseUrl: string;
  /** Model size the server runs; clone prompts only fit the size that made them. @default "1.7b" */
  modelSize?: string;
  /** Voices to offer when the server has no voice list (`GET /api/v1/voices`). */
  voices?: readonly string[];
  /** Largest answer of one request (audio or prompt, base64 included), in bytes. @default 67108864 */
  maxResponseBytes?: number;
  /** Logger; the engine logs through `log.child({ component: "qwen3-tts-engine" })`. */
  log?: Logger;
}

/**
 * Creates the engine and reads the server's voices (`GET /api/v1/voices`, else `voices`, else
 * the nine Qwen3-TTS CustomVoice speakers). The server does not have to be up yet.
 *
 * `synthesize` posts `{text, voice, instruct}` to `/api/v1/tts`, or `{text, prompt_b64,
 * prompt_id, instruct}` to `/api/v1/tts/clone-prompt` when the request has a clone prompt, and
 * yields PCM as the answer arrives: raw audio (WAV or PCM) streams; a JSON answer with base64 WAV
 * (`audio_b64`) is decoded once whole. `speed` is not sent (the seed's API has none).
 * `createClonePrompt` posts `{audio, name, ref_text, language}` (audio base64, name made by
 * voxgate from the audio's digest) to `/api/v1/voices/clone-prompt` and returns the `.pt` bytes
 * from the answer's base64 field as `application/octet-stream`. Field names live in
 * `wire-fields.ts`. Throws `RangeError` for invalid options.
 */
export async function createQwen3TtsEngine(options: Qwen3TtsEngineOptions): Promise<TtsEngine> {
  const engineId = QWEN3_ENGINE_ID;
  const { client, sampleRateHz, voices, voiceIds } = await connectModelServer(options, {
    engineId,
    component: "qwen3-tts-engine",
    wire: QWEN3_WIRE,
  });

  const info: EngineInfo = {
    id: engineId,
    version: "1",
    modelFamily: "qwen3-tts",
    modelSize: options.modelSize || "1.7b",
    format: { sampleRateHz, channels: 1 },
    voices,
    supportsSpeed: false,
    supportsCloning: true,
  };
  const calls = createEngineCalls(engineId);

  async function* audioOf(response: ModelServerResponse): AsyncIterable<Uint8Array> {
    if (response.contentType !== "application/json") {
      yield* readPcmStream(response.body(), { engineId, format: info.format });
      return;
    }
    const value = await response.json();
    const encoded = pickString(value, QWEN3_WIRE.audioBase64);
    if (encoded === undefined) {
      throw new SynthesisFailedError(
        engineId,
        `the model server's JSON answer has no audio (looked for ${QWEN3_WIRE.audioBase64.join(", ")})`,
      );
    }
    yield* readPcmStream([Buffer.from(encoded, "base64")], { engineId, format: info.format });
  }

  async function* synthesize(
    request: EngineSynthesisRequest,
    signal: AbortSignal,
  ): AsyncIterable<EngineAudioChunk> {
    const prompt = request.clonePrompt;
    const voice = prompt ? "" : request.voiceId || (voiceIds[0] as string);
    if (!prompt && !voiceIds.includes(voice)) {
      throw new UnknownVoiceError(engineId, voice, voiceIds.slice(0, 8));
    }
    const fields = QWEN3_WIRE.tts;
    const json: Record<string, unknown> = prompt
      ? {
          [fields.text]: request.text,
          [fields.promptBase64]: Buffer.from(prompt.bytes).toString("base64"),
          [fields.promptId]: prompt.digest,
        }
      : { [fields.text]: request.text, [fields.voice]: voice };
    if (request.instructions) json[fields.instructions] = request.instructions;
    const context = {
      engineId,
      voiceId: voice,
      knownVoiceIds: voiceIds,
      withClonePrompt: prompt !== undefined,
    };
    yield* calls.stream(signal, context, async function* (inner) {
      const response = await client.request({
        method: "POST",
        path: prompt ? QWEN3_WIRE.clonePromptTtsPath : QWEN3_WIRE.ttsPath,
        accept: "audio/wav, application/json",
        signal: inner,
        json,
      });
      for await (const pcm of audioOf(response)) yield { pcm };
    });
  }

  async function createClonePrompt(
    request: EngineCloneRequest,
    signal: AbortSignal,
  ): Promise<EngineClonePromptResult> {
    if (request.referenceAudio.byteLength === 0) {
      throw new EngineInputError(engineId, "the reference audio is empty");
    }
    const fields = QWEN3_WIRE.createClonePrompt;
    // The server files prompts under this name; voxgate makes it, callers never choose it.
    const digest = createHash("sha256").update(request.referenceAudio).digest("hex");
    const json: Record<string, unknown> = {
      [fields.audioBase64]: Buffer.from(request.referenceAudio).toString("base64"),
      [fields.name]: `voxgate-${digest.slice(0, 24)}`,
      [fields.referenceText]: request.referenceText,
    };
    if (request.language) json[fields.language] = request.language;
    const context = { engineId, voiceId: "", knownVoiceIds: voiceIds };
    return calls.run(signal, context, async (inner) => {
      const response = await client.request({
        method: "POST",
        path: QWEN3_WIRE.createClonePromptPath,
        accept: "application/json",
        signal: inner,
        json,
      });
      const encoded = pickString(await response.json(), QWEN3_WIRE.promptBase64);
      const prompt = encoded === undefined ? undefined : Buffer.from(encoded, "base64");
      if (!prompt || prompt.byteLength === 0) {
        throw new SynthesisFailedError(
          engineId,
          `the model server's clone-prompt answer has no prompt (looked for ${QWEN3_WIRE.promptBase64.join(", ")})`,
        );
      }
      return { prompt: new Uint8Array(prompt), contentType: "application/octet-stream" };
    });
  }

  return {
    info,
    synthesize,
    createClonePrompt,
    async close() {
      calls.close();
    },
  };
}

function pickString(value: unknown, fields: readonly string[]): string | undefined {
  if (!value || typeof value !== "object") return undefined;
  const record = value as Record<string, unknown>;
  return fields.map((f) => record[f]).find((v): v is string => typeof v === "string" && v !== "");
}
