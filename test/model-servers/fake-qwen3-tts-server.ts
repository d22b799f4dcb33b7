/**
 * A fake Qwen3-TTS local server on 127.0.0.1, written from `server/local_server.py` of
 * `decay256/qwen3-tts-server` (its routes as the relay tunnel and the standalone server carry them
 * over HTTP): `GET /api/v1/status`, `GET /api/v1/tts/voices`, `POST /api/v1/tts/synthesize`
 * (`{text, voice_id, instructions, format}`), `POST /api/v1/voices/design` (`{text, instruct,
 * language, format}`), `POST /api/v1/voices/clone-prompt` (`{name, ref_audio_base64, ref_text,
 * tags}` → `{name, status: "created", metadata}`, the prompt saved as `<promptsDir>/<name>.prompt`
 * as the server's PromptStore does) and `POST /api/v1/tts/clone-prompt` (`{text, voice_prompt,
 * language, format}`, the prompt loaded from that directory; 404 when absent). Audio answers are
 * JSON `{audio (base64 WAV), format, sample_rate, duration_s}`; the tone's pitch depends on the
 * voice, the description or the prompt file's bytes, so tests can tell which was used.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { encodeWavHeader } from "../../services/audio/wav.js";
import { type RecordedRequest, sendJson, serveFake } from "./fake-server-support.js";
import { speechPcm } from "./tone.js";

/** First bytes of every prompt file this fake writes; a prompt file without them is refused. */
export const FAKE_PROMPT_MAGIC = "FAKEQWENPT1\n";

/** Knobs of the fake; change them any time. */
export interface FakeQwen3Knobs {
  /** Voices of `GET /api/v1/tts/voices`; undefined answers 404. */
  voices: string[] | undefined;
  /** The next answers of any POST endpoint are these errors, in order. */
  failNext: Array<{ status: number; body: unknown }>;
  /** Delay before each audio answer, in ms (latency benchmarks). */
  delayMs: number;
}

/** A running fake. */
export interface FakeQwen3TtsServer {
  /** Base URL, e.g. `http://127.0.0.1:12345`. */
  readonly url: string;
  /** The prompt store directory (`local.prompts_dir`). */
  readonly promptsDir: string;
  /** Every request so far. */
  readonly requests: RecordedRequest[];
  /** Knobs. */
  readonly knobs: FakeQwen3Knobs;
  /** Prompt files loaded by `/api/v1/tts/clone-prompt`, in order. */
  readonly promptsReceived: Uint8Array[];
  /** Prompt files written by `/api/v1/voices/clone-prompt`, in order. */
  readonly promptsCreated: Uint8Array[];
  /** The PCM this server speaks for `text` with a preset `voice`. */
  expectedPcm(text: string, voice: string): Uint8Array;
  /** The PCM this server speaks for `text` with the clone prompt file `prompt`. */
  expectedPromptPcm(text: string, prompt: Uint8Array): Uint8Array;
  /** The PCM this server speaks for `text` with a voice designed from `instruct`. */
  expectedDesignPcm(text: string, instruct: string): Uint8Array;
  /** Stops the server, cutting open connections. */
  close(): Promise<void>;
}

/** Starts the fake on 127.0.0.1 and a free port, with its prompt store in `promptsDir`. */
export async function startFakeQwen3TtsServer(options: {
  promptsDir: string;
  apiKey?: string;
  sampleRateHz?: number;
  knobs?: Partial<FakeQwen3Knobs>;
}): Promise<FakeQwen3TtsServer> {
  const sampleRateHz = options.sampleRateHz ?? 24_000;
  const { promptsDir } = options;
  await mkdir(promptsDir, { recursive: true });
  const knobs: FakeQwen3Knobs = {
    voices: ["vivian", "ryan"],
    failNext: [],
    delayMs: 0,
    ...options.knobs,
  };
  const requests: RecordedRequest[] = [];
  const promptsReceived: Uint8Array[] = [];
  const promptsCreated: Uint8Array[] = [];
  const promptKey = (prompt: Uint8Array) =>
    `prompt:${createHash("sha256").update(prompt).digest("hex")}`;

  const audioAnswer = (pcm: Uint8Array) => {
    const wav = Buffer.concat([
      encodeWavHeader({ sampleRateHz, channels: 1, dataBytes: pcm.byteLength }),
      pcm,
    ]);
    return {
      audio: wav.toString("base64"),
      format: "wav",
      sample_rate: sampleRateHz,
      duration_s: Math.round((pcm.byteLength / 2 / sampleRateHz) * 100) / 100,
    };
  };
  const error = (
    entry: RecordedRequest,
    res: Parameters<typeof sendJson>[0],
    status: number,
    message: string,
  ) => sendJson(res, entry, status, { error: message });

  const listening = await serveFake(requests, async (req, res, entry) => {
    if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      return error(entry, res, 401, "Invalid API key");
    }
    const path = (req.url ?? "").split("?")[0];
    const body = (entry.body ?? {}) as Record<string, unknown>;
    if (req.method === "POST" && knobs.failNext.length > 0) {
      const failure = knobs.failNext.shift() as { status: number; body: unknown };
      return sendJson(res, entry, failure.status, failure.body);
    }
    const text = typeof body.text === "string" ? body.text : "";
    const delay = () => new Promise((r) => setTimeout(r, knobs.delayMs));
    switch (`${req.method} ${path}`) {
      case "GET /api/v1/status":
        return sendJson(res, entry, 200, {
          status: "ok",
          gpu: "Fake GPU",
          vram_used_gb: 3.5,
          vram_total_gb: 24,
          models_loaded: ["custom_voice", "base", "voice_design"],
          engine_ready: true,
        });
      case "GET /api/v1/tts/voices":
        if (!knobs.voices) return error(entry, res, 404, `Not found: GET ${path}`);
        return sendJson(res, entry, 200, {
          voices: knobs.voices.map((name) => ({
            voice_id: name,
            name,
            type: "builtin",
            description: "",
          })),
        });
      case "POST /api/v1/tts/synthesize": {
        if (!text) return error(entry, res, 400, "Missing 'text' field");
        const key = (body.voice_name ?? body.voice_id) as string | undefined;
        if (!key) return error(entry, res, 400, "Missing 'voice_id' or 'voice_name' field");
        if (!knobs.voices?.includes(key)) return error(entry, res, 404, `Voice not found: ${key}`);
        await delay();
        return sendJson(res, entry, 200, {
          ...audioAnswer(speechPcm(text, key, sampleRateHz)),
          voice_id: key,
        });
      }
      case "POST /api/v1/voices/design": {
        const instruct = body.instruct;
        if (!text || typeof instruct !== "string" || !instruct) {
          return error(entry, res, 400, "Missing 'text' and 'instruct'");
        }
        await delay();
        return sendJson(
          res,
          entry,
          200,
          audioAnswer(speechPcm(text, `design:${instruct}`, sampleRateHz)),
        );
      }
      case "POST /api/v1/voices/clone-prompt": {
        const name = body.name;
        const audio = body.ref_audio_base64;
        if (typeof name !== "string" || !name) return error(entry, res, 400, "Missing 'name'");
        if (typeof audio !== "string" || !audio) {
          return error(entry, res, 400, "Missing 'ref_audio_base64'");
        }
        if (!/^[A-Za-z0-9_-]+$/.test(name)) {
          return error(entry, res, 500, `Invalid prompt name: '${name}'`);
        }
        const refText = typeof body.ref_text === "string" ? body.ref_text : "";
        // Like torch.save of the prompt tensors: bytes that depend on the audio and transcript.
        const prompt = Buffer.concat([
          Buffer.from(FAKE_PROMPT_MAGIC),
          createHash("sha256").update(Buffer.from(audio, "base64")).update(refText).digest(),
        ]);
        await writeFile(join(promptsDir, `${name}.prompt`), prompt);
        const metadata = {
          name,
          tags: body.tags ?? [],
          ref_text: refText,
          x_vector_only_mode: refText === "",
          icl_mode: refText !== "",
        };
        await writeFile(join(promptsDir, `${name}.json`), JSON.stringify(metadata));
        promptsCreated.push(new Uint8Array(prompt));
        return sendJson(res, entry, 200, { name, status: "created", metadata });
      }
      case "POST /api/v1/tts/clone-prompt": {
        const name = body.voice_prompt;
        if (!text || typeof name !== "string" || !name) {
          return error(entry, res, 400, "Missing 'text' and 'voice_prompt'");
        }
        const prompt = await readFile(
          join(promptsDir, `${name.replace(/[/\\]/g, "")}.prompt`),
        ).catch(() => undefined);
        if (!prompt) return error(entry, res, 404, `Clone prompt '${name}' not found`);
        if (!prompt.subarray(0, FAKE_PROMPT_MAGIC.length).equals(Buffer.from(FAKE_PROMPT_MAGIC))) {
          return error(entry, res, 500, "invalid load key, 'x'.");
        }
        promptsReceived.push(new Uint8Array(prompt));
        await delay();
        return sendJson(
          res,
          entry,
          200,
          audioAnswer(speechPcm(text, promptKey(prompt), sampleRateHz)),
        );
      }
      default:
        return error(entry, res, 404, `Not found: ${req.method} ${path}`);
    }
  });

  return {
    url: listening.url,
    promptsDir,
    requests,
    knobs,
    promptsReceived,
    promptsCreated,
    expectedPcm: (text, voice) => speechPcm(text, voice, sampleRateHz),
    expectedPromptPcm: (text, prompt) => speechPcm(text, promptKey(prompt), sampleRateHz),
    expectedDesignPcm: (text, instruct) => speechPcm(text, `design:${instruct}`, sampleRateHz),
    close: listening.close,
  };
}
