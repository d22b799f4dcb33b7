/**
 * A fake but real Qwen3-TTS local server on 127.0.0.1 with the API the design seed describes:
 * `POST /api/v1/tts` (preset voice), `POST /api/v1/voices/clone-prompt` (reference audio in, a
 * `.pt`-like prompt out as base64 JSON) and `POST /api/v1/tts/clone-prompt` (speak with a prompt),
 * plus `GET /api/v1/voices`. Audio is a WAV tone whose pitch depends on the voice, or on the
 * prompt bytes received, so tests can tell which prompt was used. Every request is recorded.
 */
import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";
import { encodeWavHeader } from "../../services/audio/wav.js";
import {
  type PieceOptions,
  type RecordedRequest,
  sendJson,
  sendPieces,
  serveFake,
} from "./fake-server-support.js";
import { speechPcm } from "./tone.js";

/** First bytes of every prompt this fake makes; a prompt without them is refused. */
export const FAKE_PROMPT_MAGIC = "FAKEQWENPT1\n";

/** Knobs of the fake; change them any time. */
export interface FakeQwen3Knobs extends PieceOptions {
  /** Preset voices; `GET /api/v1/voices` answers 404 when this is undefined. */
  voices: string[] | undefined;
  /** Answer synthesis as JSON `{audio_b64}` instead of raw WAV. */
  answerAsJson: boolean;
  /** The next answers of any POST endpoint are these errors, in order. */
  failNext: Array<{ status: number; body: unknown }>;
}

/** A running fake. */
export interface FakeQwen3TtsServer {
  /** Base URL, e.g. `http://127.0.0.1:12345`. */
  readonly url: string;
  /** Every request so far. */
  readonly requests: RecordedRequest[];
  /** Knobs. */
  readonly knobs: FakeQwen3Knobs;
  /** Prompt bytes received by `/api/v1/tts/clone-prompt`, in order. */
  readonly promptsReceived: Uint8Array[];
  /** Prompt bytes returned by `/api/v1/voices/clone-prompt`, in order. */
  readonly promptsCreated: Uint8Array[];
  /** The PCM this server speaks for `text` with a preset `voice`. */
  expectedPcm(text: string, voice: string): Uint8Array;
  /** The PCM this server speaks for `text` with the clone prompt `prompt`. */
  expectedPromptPcm(text: string, prompt: Uint8Array): Uint8Array;
  /** Stops the server, cutting open connections. */
  close(): Promise<void>;
}

/** Starts the fake on 127.0.0.1 and a free port. */
export async function startFakeQwen3TtsServer(
  options: { apiKey?: string; sampleRateHz?: number; knobs?: Partial<FakeQwen3Knobs> } = {},
): Promise<FakeQwen3TtsServer> {
  const sampleRateHz = options.sampleRateHz ?? 24_000;
  const knobs: FakeQwen3Knobs = {
    voices: ["vivian", "ryan"],
    answerAsJson: false,
    failNext: [],
    pieceBytes: 4800,
    pieceDelayMs: 0,
    gate: undefined,
    ...options.knobs,
  };
  const requests: RecordedRequest[] = [];
  const promptsReceived: Uint8Array[] = [];
  const promptsCreated: Uint8Array[] = [];
  const promptKey = (prompt: Uint8Array) =>
    `prompt:${createHash("sha256").update(prompt).digest("hex")}`;

  const answerAudio = async (res: ServerResponse, entry: RecordedRequest, pcm: Uint8Array) => {
    const wav = Buffer.concat([
      encodeWavHeader({ sampleRateHz, channels: 1, dataBytes: pcm.byteLength }),
      pcm,
    ]);
    if (knobs.answerAsJson) {
      sendJson(res, entry, 200, { audio_b64: wav.toString("base64"), sample_rate: sampleRateHz });
      return;
    }
    await sendPieces(res, entry, "audio/wav", wav, knobs);
  };

  const fake = await serveFake(requests, async (req, res, entry) => {
    if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      sendJson(res, entry, 401, { detail: "invalid API key" });
      return;
    }
    if (req.method === "GET" && req.url === "/api/v1/voices") {
      if (!knobs.voices) sendJson(res, entry, 404, { detail: "Not Found" });
      else sendJson(res, entry, 200, { voices: knobs.voices.map((id) => ({ id, name: id })) });
      return;
    }
    const failure = req.method === "POST" ? knobs.failNext.shift() : undefined;
    if (failure) {
      sendJson(res, entry, failure.status, failure.body);
      return;
    }
    const body = (entry.body ?? {}) as Record<string, unknown>;
    if (req.method === "POST" && req.url === "/api/v1/tts") {
      const voice = String(body.voice ?? "");
      if (!knobs.voices?.includes(voice)) {
        sendJson(res, entry, 400, { detail: `unknown speaker '${voice}'` });
        return;
      }
      await answerAudio(res, entry, speechPcm(String(body.text ?? ""), voice, sampleRateHz));
      return;
    }
    if (req.method === "POST" && req.url === "/api/v1/voices/clone-prompt") {
      const audio = Buffer.from(String(body.audio ?? ""), "base64");
      if (audio.subarray(0, 4).toString("latin1") !== "RIFF") {
        sendJson(res, entry, 400, { detail: "audio is not a WAV file" });
        return;
      }
      const prompt = Buffer.concat([
        Buffer.from(FAKE_PROMPT_MAGIC),
        createHash("sha256").update(audio).digest(),
        Buffer.from(String(body.ref_text ?? "")),
      ]);
      promptsCreated.push(new Uint8Array(prompt));
      sendJson(res, entry, 200, {
        name: body.name,
        prompt_b64: prompt.toString("base64"),
        status: "created",
      });
      return;
    }
    if (req.method === "POST" && req.url === "/api/v1/tts/clone-prompt") {
      const prompt = new Uint8Array(Buffer.from(String(body.prompt_b64 ?? ""), "base64"));
      promptsReceived.push(prompt);
      if (
        Buffer.from(prompt.subarray(0, FAKE_PROMPT_MAGIC.length)).toString() !== FAKE_PROMPT_MAGIC
      ) {
        sendJson(res, entry, 400, { detail: "prompt_b64 is not a clone prompt of this model" });
        return;
      }
      await answerAudio(
        res,
        entry,
        speechPcm(String(body.text ?? ""), promptKey(prompt), sampleRateHz),
      );
      return;
    }
    sendJson(res, entry, 404, { detail: "Not Found" });
  });

  return {
    url: fake.url,
    requests,
    knobs,
    promptsReceived,
    promptsCreated,
    expectedPcm: (text, voice) => speechPcm(text, voice, sampleRateHz),
    expectedPromptPcm: (text, prompt) => speechPcm(text, promptKey(prompt), sampleRateHz),
    close: fake.close,
  };
}
