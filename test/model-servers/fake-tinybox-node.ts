/**
 * A fake StoryForge Tinybox compute node on 127.0.0.1, written from STORYFORGE.md §3 (the node's
 * public snapshot plus what StoryForge Cloud sends and reads): Bearer auth (401/403), `GET /ping`,
 * `GET /v1/engines`, `GET /v1/metrics` (`gpus[]`, `processes[]` as from nvidia-smi), `POST /v1/tts`
 * (`{engine, voice, text, upload, job_id, delivery?, styletts2_*?}` → `{ok, audio_b64,
 * content_type}`; `voice` is a tortoise name, or a URL the node downloads for xtts and styletts2),
 * `POST /v1/audio/age|gender` (`{audio_b64}` or `{url}`), `POST /v1/audio/analyze` (`{url}` →
 * `{ok, duration_s, lufs_i, features}`), `POST /v1/llm` (OpenAI chat body → chat completion) and
 * `POST /v1/jobs/abort`. Audio is a WAV tone keyed by engine and voice (or the downloaded clip's
 * digest), so tests can tell what the node used; every request and download is recorded.
 */
import { createHash } from "node:crypto";
import { encodeWavHeader } from "../../services/audio/wav.js";
import { type RecordedRequest, sendJson, serveFake } from "./fake-server-support.js";
import { speechPcm } from "./tone.js";

/** What the fake downloaded from a URL it was given. */
export interface FakeDownload {
  /** The URL. */
  url: string;
  /** HTTP status of the download. */
  status: number;
  /** The bytes (empty on failure). */
  bytes: Buffer;
}

/** Knobs of the fake. */
export interface FakeTinyboxKnobs {
  /** Delay before a `/v1/tts` answer, in ms (a long synthesis to cancel). */
  ttsDelayMs: number;
  /** Age the classifier answers. */
  ageYears: number;
  /** Gender the classifier answers. */
  gender: "male" | "female";
}

/** A running fake node. */
export interface FakeTinyboxNode {
  /** Base URL. */
  readonly url: string;
  /** Every request. */
  readonly requests: RecordedRequest[];
  /** Every URL the node downloaded. */
  readonly downloads: FakeDownload[];
  /** Knobs. */
  readonly knobs: FakeTinyboxKnobs;
  /** The PCM for `text` spoken by `engine` with tortoise voice or clip digest `key`. */
  expectedPcm(engine: string, text: string, key: string): Uint8Array;
  /** Stops the node. */
  close(): Promise<void>;
}

/** The digest key of a downloaded reference clip (see {@link FakeTinyboxNode.expectedPcm}). */
export function clipKey(bytes: Uint8Array): string {
  return `clip:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Starts the fake node; `token` is its bearer token. */
export async function startFakeTinyboxNode(options: {
  token: string;
  sampleRateHz?: number;
}): Promise<FakeTinyboxNode> {
  const sampleRateHz = options.sampleRateHz ?? 24_000;
  const requests: RecordedRequest[] = [];
  const downloads: FakeDownload[] = [];
  const knobs: FakeTinyboxKnobs = { ttsDelayMs: 0, ageYears: 37.5, gender: "male" };
  const tone = (engine: string, text: string, key: string) =>
    speechPcm(text, `${engine}:${key}`, sampleRateHz);
  const download = async (url: string): Promise<Buffer | undefined> => {
    const response = await fetch(url).catch(() => undefined);
    const bytes = response?.ok ? Buffer.from(await response.arrayBuffer()) : Buffer.alloc(0);
    downloads.push({ url, status: response?.status ?? 0, bytes });
    return response?.ok ? bytes : undefined;
  };
  const audioOf = async (body: Record<string, unknown>) =>
    typeof body.audio_b64 === "string"
      ? Buffer.from(body.audio_b64, "base64")
      : typeof body.url === "string"
        ? await download(body.url)
        : undefined;

  const listening = await serveFake(requests, async (req, res, entry) => {
    const path = (req.url ?? "").split("?")[0];
    if (path === "/ping") {
      return sendJson(res, entry, 200, { ok: true, service: "tinybox-compute-node", ts: 0 });
    }
    const auth = req.headers.authorization ?? "";
    if (!auth.startsWith("Bearer ")) return sendJson(res, entry, 401, { detail: "unauthorized" });
    if (auth !== `Bearer ${options.token}`)
      return sendJson(res, entry, 403, { detail: "forbidden" });
    const body = (entry.body ?? {}) as Record<string, unknown>;
    switch (`${req.method} ${path}`) {
      case "GET /v1/engines":
        return sendJson(res, entry, 200, { ok: true, engines: ["xtts", "tortoise", "styletts2"] });
      case "GET /v1/metrics":
        return sendJson(res, entry, 200, {
          ok: true,
          ts: 0,
          cpu_pct: 12.5,
          load: [1, 1, 1],
          ram_total_mb: 128_000,
          ram_used_mb: 64_000,
          gpu: null,
          gpus: [
            {
              index: 0,
              name: "NVIDIA RTX A6000",
              util_gpu_pct: 87,
              util_mem_pct: 40,
              power_w: 251.5,
              temp_c: 71,
              vram_total_mb: 49_140,
              vram_used_mb: 30_100,
            },
            {
              index: 1,
              name: "NVIDIA RTX A6000",
              util_gpu_pct: 3,
              util_mem_pct: 1,
              power_w: 22,
              temp_c: 35,
              vram_total_mb: 49_140,
              vram_used_mb: 500,
            },
          ],
          processes: [
            {
              pid: 4242,
              name: "python",
              cpu_pct: 99,
              mem_pct: 5,
              ram_mb: 6000,
              elapsed: "01:00",
              command: "python",
              args: "xtts",
              gpu_mem_mb: 29_000,
            },
          ],
        });
      case "POST /v1/tts": {
        const engine = String(body.engine ?? "");
        const text = String(body.text ?? "");
        const voice = String(body.voice ?? "");
        if (!text) return sendJson(res, entry, 200, { ok: false, error: "missing_text" });
        let key = voice;
        if (engine === "xtts" || engine === "styletts2") {
          const clip = /^https?:\/\//.test(voice) ? await download(voice) : undefined;
          if (!clip)
            return sendJson(res, entry, 200, { ok: false, error: "voice_download_failed" });
          key = clipKey(clip);
        } else if (engine !== "tortoise") {
          return sendJson(res, entry, 200, { ok: false, error: "unknown_engine" });
        }
        if (knobs.ttsDelayMs > 0) {
          await Promise.race([new Promise((r) => setTimeout(r, knobs.ttsDelayMs)), entry.closed]);
          if (res.destroyed || entry.closedEarly) return;
        }
        const pcm = tone(engine, text, key);
        const wav = Buffer.concat([
          encodeWavHeader({ sampleRateHz, channels: 1, dataBytes: pcm.byteLength }),
          pcm,
        ]);
        return sendJson(res, entry, 200, {
          ok: true,
          audio_b64: wav.toString("base64"),
          content_type: "audio/wav",
          gpu: 0,
        });
      }
      case "POST /v1/audio/age": {
        const audio = await audioOf(body);
        if (!audio?.byteLength)
          return sendJson(res, entry, 200, { ok: false, error: "missing_audio" });
        return sendJson(res, entry, 200, { ok: true, age_years: knobs.ageYears });
      }
      case "POST /v1/audio/gender": {
        const audio = await audioOf(body);
        if (!audio?.byteLength)
          return sendJson(res, entry, 200, { ok: false, error: "missing_audio" });
        return sendJson(res, entry, 200, { ok: true, gender: knobs.gender });
      }
      case "POST /v1/audio/analyze": {
        const audio = typeof body.url === "string" ? await download(body.url) : undefined;
        if (!audio) return sendJson(res, entry, 200, { ok: false, error: "download_failed" });
        return sendJson(res, entry, 200, {
          ok: true,
          duration_s: 1,
          lufs_i: -20.5,
          features: { f0_hz_median: 118.5, pitch_bucket: "low", brightness: "dark" },
        });
      }
      case "POST /v1/llm": {
        const messages = Array.isArray(body.messages)
          ? (body.messages as Array<{ content: string }>)
          : [];
        return sendJson(res, entry, 200, {
          id: "cmpl-node",
          object: "chat.completion",
          model: body.model,
          choices: [
            {
              index: 0,
              message: {
                role: "assistant",
                content: `Node says: ${messages.at(-1)?.content ?? ""}`,
              },
              finish_reason: "stop",
            },
          ],
          usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
        });
      }
      case "POST /v1/jobs/abort":
        return sendJson(res, entry, 200, { ok: true });
      default:
        return sendJson(res, entry, 404, { detail: "Not Found" });
    }
  });
  return {
    url: listening.url,
    requests,
    downloads,
    knobs,
    expectedPcm: tone,
    close: listening.close,
  };
}
