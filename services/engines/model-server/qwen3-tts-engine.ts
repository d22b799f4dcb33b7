/**
 * An engine that forwards to the Qwen3-TTS local server of `decay256/qwen3-tts-server`
 * (`server/local_server.py`; its routes reach HTTP through the relay's tunnel or the standalone
 * FastAPI server): preset-voice synthesis, voice design, clone-prompt creation and synthesis with
 * a clone prompt.
 *
 * The server keeps clone prompts in its own prompt store, a directory of `<name>.prompt` files
 * (`torch.save` of the prompt tensors) that its API only names and never returns. The agent runs
 * on the same host, so it reads a prompt the server made from that directory (the bytes the
 * gateway stores) and writes one the gateway sent before naming it in a synthesis: the same file
 * drop the predecessor's RunPod worker does with prompts it fetched. The server never fetches
 * anything; no URL reaches it.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import {
  EngineInputError,
  EngineUnavailableError,
  SynthesisFailedError,
  UnknownVoiceError,
} from "../engine-errors.js";
import type {
  EngineAudioChunk,
  EngineClonePromptResult,
  EngineCloneRequest,
  EngineInfo,
  EngineSynthesisRequest,
  PcmFormat,
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

/** MIME type of Qwen3-TTS clone prompts (the server's `.prompt` files). */
export const QWEN3_PROMPT_CONTENT_TYPE = "application/x-qwen3-tts-prompt";

/** The synthesis mode that speaks with a voice made from a description (`params.mode`). */
export const VOICE_DESIGN_MODE = "voice_design";

/** Options of {@link createQwen3TtsEngine}. */
export interface Qwen3TtsEngineOptions extends ModelServerConnectionOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:8000`. */
  baseUrl: string;
  /** Model size the server runs; clone prompts only fit the size that made them. @default "1.7b" */
  modelSize?: string;
  /**
   * The server's prompt store directory (`local.prompts_dir` of its config, `PROMPTS_DIR` of the
   * standalone server). Cloning needs it; without it the engine only speaks presets and designs.
   */
  promptsDir?: string;
  /** Voices to offer when the server has no voice list (`GET /api/v1/tts/voices`). */
  voices?: readonly string[];
  /** Logger; the engine logs through `log.child({ component: "qwen3-tts-engine" })`. */
  log?: Logger;
}

// BCP-47 primary tags → the language names Qwen3-TTS takes; anything else is "Auto".
const LANGUAGES: Record<string, string> = {
  en: "English",
  zh: "Chinese",
  ja: "Japanese",
  ko: "Korean",
  de: "German",
  fr: "French",
  ru: "Russian",
  pt: "Portuguese",
  es: "Spanish",
  it: "Italian",
};

/** The Qwen3-TTS language name of a BCP-47 tag (`Auto` when empty or unknown). */
export function qwen3Language(tag: string): string {
  return LANGUAGES[tag.toLowerCase().split("-")[0] ?? ""] ?? "Auto";
}

/** The name a prompt gets in the server's store: `vx-` and 32 hex digits of `digest`. */
export function qwen3PromptName(digest: string): string {
  return `vx-${digest.slice(0, 32)}`;
}

/**
 * Creates the engine and reads the server's voices (`GET /api/v1/tts/voices`, else `voices`, else
 * the nine Qwen3-TTS CustomVoice speakers). The server does not have to be up yet.
 *
 * `synthesize` posts `{text, voice_id, voice, instructions?, instruct?, format: "wav"}` to
 * `/api/v1/tts/synthesize`; with `params.mode = "voice_design"` it posts `{text, instruct,
 * language, format}` to `/api/v1/voices/design` (the instructions describe the voice); with a
 * clone prompt it makes sure `<promptsDir>/vx-<digest>.prompt` holds the prompt's bytes and posts
 * `{text, voice_prompt, language, format}` to `/api/v1/tts/clone-prompt`. Answers are JSON with
 * base64 WAV in `audio`; the WAV header gives the rate. `createClonePrompt` posts `{name,
 * ref_audio_base64, audio, ref_text, tags}` to `/api/v1/voices/clone-prompt` and returns the
 * `.prompt` file the server saved. Throws `RangeError` for invalid options.
 */
export async function createQwen3TtsEngine(options: Qwen3TtsEngineOptions): Promise<TtsEngine> {
  const engineId = QWEN3_ENGINE_ID;
  const { client, sampleRateHz, voices, voiceIds, log } = await connectModelServer(options, {
    engineId,
    component: "qwen3-tts-engine",
    wire: QWEN3_WIRE,
    readyLog: { promptsDir: options.promptsDir ?? "" },
  });
  const promptsDir = options.promptsDir ?? "";

  const info: EngineInfo = {
    id: engineId,
    version: "2",
    modelFamily: "qwen3-tts",
    modelSize: options.modelSize || "1.7b",
    format: { sampleRateHz, channels: 1 },
    voices,
    supportsSpeed: false,
    supportsCloning: promptsDir !== "",
    modes: [VOICE_DESIGN_MODE],
  };
  const calls = createEngineCalls(engineId);

  const needPromptsDir = () =>
    new EngineUnavailableError(
      engineId,
      "cloning with the Qwen3-TTS local server needs its prompt store directory: set VOXGATE_AGENT_ENGINE_PROMPTS_DIR",
    );

  /** Audio of a JSON answer (`audio`, base64 WAV) or of a raw audio answer, with its format. */
  async function* audioOf(response: ModelServerResponse): AsyncIterable<EngineAudioChunk> {
    let format: PcmFormat | undefined;
    const pcmOptions = {
      engineId,
      format: info.format,
      adoptWavFormat: true,
      onFormat: (f: PcmFormat) => {
        format = f;
      },
    };
    if (response.contentType !== "application/json") {
      for await (const pcm of readPcmStream(response.body(), pcmOptions)) {
        yield { pcm, ...(format ? { format } : {}) };
      }
      return;
    }
    const value = await response.json();
    const encoded = pickString(value, QWEN3_WIRE.audioBase64);
    if (encoded === undefined) {
      const error = pickString(value, ["error", "detail"]);
      throw new SynthesisFailedError(
        engineId,
        error
          ? `the model server failed: ${error.slice(0, 300)}`
          : `the model server's JSON answer has no audio (looked for ${QWEN3_WIRE.audioBase64.join(", ")})`,
      );
    }
    for await (const pcm of readPcmStream([Buffer.from(encoded, "base64")], pcmOptions)) {
      yield { pcm, ...(format ? { format } : {}) };
    }
  }

  /** Writes a prompt the gateway sent into the server's store, unless it is there already. */
  async function placePrompt(digest: string, bytes: Uint8Array): Promise<string> {
    if (!promptsDir) throw needPromptsDir();
    const name = qwen3PromptName(digest);
    const path = join(promptsDir, `${name}${QWEN3_WIRE.promptFileSuffix}`);
    const present = await stat(path).then(
      (s) => s.size === bytes.byteLength,
      () => false,
    );
    if (!present) {
      await mkdir(promptsDir, { recursive: true });
      // Written aside and renamed, so the server never loads half a file.
      const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
      await writeFile(temp, bytes);
      await rename(temp, path);
      log?.debug({ prompt: name }, "clone prompt placed in the server's prompt store");
    }
    return name;
  }

  async function* synthesize(
    request: EngineSynthesisRequest,
    signal: AbortSignal,
  ): AsyncIterable<EngineAudioChunk> {
    const prompt = request.clonePrompt;
    const mode = request.params?.mode ?? "";
    const language = qwen3Language(request.language ?? "");
    let path: string;
    let json: Record<string, unknown>;
    let voice = "";
    if (prompt) {
      const name = await placePrompt(prompt.digest, prompt.bytes);
      const f = QWEN3_WIRE.clonePromptTts;
      path = QWEN3_WIRE.clonePromptTtsPath;
      json = {
        [f.text]: request.text,
        [f.prompt]: name,
        [f.language]: language,
        [f.format]: "wav",
      };
    } else if (mode === VOICE_DESIGN_MODE) {
      if (!request.instructions.trim()) {
        throw new EngineInputError(
          engineId,
          "voice design needs instructions that describe the voice (e.g. 'a warm, low male voice')",
        );
      }
      const f = QWEN3_WIRE.design;
      path = QWEN3_WIRE.designPath;
      json = {
        [f.text]: request.text,
        [f.instruct]: request.instructions,
        [f.language]: language === "Auto" ? "English" : language,
        [f.format]: "wav",
      };
    } else if (mode) {
      throw new EngineInputError(
        engineId,
        `mode "${mode.slice(0, 40)}" is not one of: ${VOICE_DESIGN_MODE}`,
      );
    } else {
      voice = request.voiceId || (voiceIds[0] as string);
      if (!voiceIds.includes(voice)) {
        throw new UnknownVoiceError(engineId, voice, voiceIds.slice(0, 8));
      }
      const f = QWEN3_WIRE.synthesize;
      path = QWEN3_WIRE.synthesizePath;
      json = { [f.text]: request.text, [f.format]: "wav" };
      for (const key of f.voiceIds) json[key] = voice;
      if (request.instructions) {
        for (const key of f.instructions) json[key] = request.instructions;
      }
    }
    const context = {
      engineId,
      voiceId: voice,
      knownVoiceIds: voiceIds,
      withClonePrompt: prompt !== undefined,
    };
    yield* calls.stream(signal, context, async function* (inner) {
      const response = await client.request({
        method: "POST",
        path,
        accept: "application/json, audio/wav",
        signal: inner,
        json,
      });
      yield* audioOf(response);
    });
  }

  async function createClonePrompt(
    request: EngineCloneRequest,
    signal: AbortSignal,
  ): Promise<EngineClonePromptResult> {
    if (!promptsDir) throw needPromptsDir();
    if (request.referenceAudio.byteLength === 0) {
      throw new EngineInputError(engineId, "the reference audio is empty");
    }
    const f = QWEN3_WIRE.createClonePrompt;
    // The server files prompts under this name; voxgate makes it, callers never choose it.
    const digest = createHash("sha256")
      .update(request.referenceAudio)
      .update("\u0000")
      .update(request.referenceText)
      .digest("hex");
    const name = qwen3PromptName(digest);
    const audio = Buffer.from(request.referenceAudio).toString("base64");
    const json: Record<string, unknown> = {
      [f.name]: name,
      [f.referenceText]: request.referenceText,
      [f.tags]: ["voxgate"],
    };
    for (const key of f.audioBase64) json[key] = audio;
    const context = { engineId, voiceId: "", knownVoiceIds: voiceIds };
    return calls.run(signal, context, async (inner) => {
      const response = await client.request({
        method: "POST",
        path: QWEN3_WIRE.createClonePromptPath,
        accept: "application/json",
        signal: inner,
        json,
      });
      const answer = (await response.json()) as { name?: unknown; error?: unknown };
      if (typeof answer?.error === "string") {
        throw new SynthesisFailedError(
          engineId,
          `the model server failed: ${answer.error.slice(0, 300)}`,
        );
      }
      const saved = typeof answer?.name === "string" && answer.name ? answer.name : name;
      const file = join(promptsDir, `${saved}${QWEN3_WIRE.promptFileSuffix}`);
      const prompt = await readFile(file).catch((err: unknown) => {
        throw new SynthesisFailedError(
          engineId,
          `the model server made prompt "${saved}" but ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); VOXGATE_AGENT_ENGINE_PROMPTS_DIR must be the server's prompt store directory`,
        );
      });
      if (prompt.byteLength === 0) {
        throw new SynthesisFailedError(engineId, `the model server's prompt file ${file} is empty`);
      }
      return { prompt: new Uint8Array(prompt), contentType: QWEN3_PROMPT_CONTENT_TYPE };
    });
  }

  return {
    info,
    synthesize,
    ...(promptsDir ? { createClonePrompt } : {}),
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
