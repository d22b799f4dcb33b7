/**
 * StoryForge Cloud's calls (STORYFORGE.md §1.1) against a real voxgate gateway process with a real
 * CPU agent, s3rver playing Cloud's private Spaces bucket. One row per call, sent with the body and
 * headers Cloud's `requests` client sends, including its error paths; each row checks the fields
 * Cloud reads.
 */
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken, hashToken } from "../../services/auth/token-codec.js";
import { type S3rverServer, startS3rverServer } from "../helpers/s3rver-server.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";
import {
  expectedReply,
  type FakeOpenAiLlmServer,
  startFakeOpenAiLlmServer,
} from "../model-servers/index.js";
import { LOAD_TOLERANT_ENV } from "./worker-setup.js";

const BUCKET = "storyforge-assets";
const CLIP_KEY = "voices/clips/1700000000-maris.wav";
/** A token without the storyforge scope (403 path). */
const TTS_ONLY_TOKEN = generateToken();

/** What Cloud's `requests.post(..., json=body, headers=_h())` puts on the wire. */
function cloudHeaders(token: string | undefined, json: boolean): Record<string, string> {
  return {
    "user-agent": "python-requests/2.32.3",
    "accept-encoding": "gzip, deflate",
    accept: "*/*",
    ...(json ? { "content-type": "application/json" } : {}),
    ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
  };
}

interface Answer {
  status: number;
  contentType: string;
  json: Record<string, unknown> | undefined;
  bytes: Buffer;
}

let stack:
  | {
      gateway: GatewayProcess;
      agent: ReturnType<typeof startAgentProcess>;
      llmAgent: ReturnType<typeof startAgentProcess>;
      llm: FakeOpenAiLlmServer;
      s3: S3rverServer;
    }
  | undefined;
const GEMMA = "google/gemma-2-9b-it";
const TRAITS_PROMPT = "Describe this voice as JSON with gender age pitch accent tone.";
let base = "";
let clipUrl = "";
let clipB64 = "";

async function call(
  method: "GET" | "POST",
  path: string,
  body: unknown,
  token: string | undefined,
): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: cloudHeaders(token, body !== undefined),
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(120_000),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const contentType = res.headers.get("content-type") ?? "";
  return {
    status: res.status,
    contentType,
    bytes,
    json: contentType.startsWith("application/json")
      ? JSON.parse(bytes.toString("utf8"))
      : undefined,
  };
}

/**
 * Waits for an agent to be routable, allowing for a slow start: this machine is shared, and a
 * fresh node process has taken over 30 s (the shared helper's wait) to log anything under load.
 */
async function routable(
  gateway: GatewayProcess,
  agent: ReturnType<typeof startAgentProcess>,
  id: string,
): Promise<void> {
  agent.connected.catch(() => {});
  await agent.proc.waitForLog((l) => l.msg === "connected to gateway", 150_000);
  await gateway.proc.waitForLog((l) => l.msg === "agent ready" && l.agent === id, 150_000);
}

beforeAll(async () => {
  const s3 = await startS3rverServer(BUCKET);
  const gateway = await startGatewayProcess({
    readyTimeoutMs: 90_000,
    env: {
      ...LOAD_TOLERANT_ENV,
      VOXGATE_TOKENS_JSON: JSON.stringify([
        { name: "tts-only", sha256: hashToken(TTS_ONLY_TOKEN), scopes: ["tts"] },
      ]),
      VOXGATE_STORYFORGE_MEDIA_BUCKET: BUCKET,
      VOXGATE_STORYFORGE_MEDIA_ENDPOINT: s3.endpoint,
      VOXGATE_STORYFORGE_MEDIA_FORCE_PATH_STYLE: "true",
      VOXGATE_STORYFORGE_MEDIA_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      VOXGATE_STORYFORGE_MEDIA_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
      VOXGATE_STORYFORGE_MEDIA_PUBLIC_BASES: `${s3.endpoint}/${BUCKET}/`,
      // Small enough that an oversized body stays within what the gateway drains (1 MiB) to answer.
      VOXGATE_STORYFORGE_MAX_JSON_BYTES: "600000",
    },
  });
  const agent = startAgentProcess(gateway, "sf-cpu", { VOXGATE_AGENT_SLOTS: "2" });
  // Cloud's LLM calls go to an OpenAI-compatible LLM server behind an agent (the LLM path).
  const llm = await startFakeOpenAiLlmServer({ models: [GEMMA] });
  const llmAgent = startAgentProcess(gateway, "sf-llm", {
    VOXGATE_AGENT_ENGINE: "openai-llm",
    VOXGATE_AGENT_ENGINE_URL: `${llm.url}/v1`,
  });
  stack = { gateway, agent, llmAgent, llm, s3 };
  await Promise.all([routable(gateway, agent, "sf-cpu"), routable(gateway, llmAgent, "sf-llm")]);
  base = `${gateway.url}/storyforge`;

  // A reference clip in the private bucket, as Cloud stores them under voices/clips/.
  const clip = await fetch(`${gateway.url}/v1/speech:synthesize`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${gateway.clientToken}` },
    body: JSON.stringify({
      text: "I can hear the sea breathing below the cliff, slow and patient, like an old friend.",
      voice: "en-gb",
    }),
  });
  expect(clip.status).toBe(200);
  const wav = Buffer.from(await clip.arrayBuffer());
  clipB64 = wav.toString("base64");
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: s3.credentials,
  });
  await client.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: CLIP_KEY, Body: wav, ContentType: "audio/wav" }),
  );
  client.destroy();
  clipUrl = `${s3.endpoint}/${BUCKET}/${CLIP_KEY}`;
  // The bucket is private: a plain GET (what Tinybox did) is refused.
  expect((await fetch(clipUrl)).status).toBe(403);
}, 400_000);

afterAll(async () => {
  await stack?.llmAgent.proc.stop();
  await stack?.llm.close();
  await stack?.agent.proc.stop();
  await stack?.gateway.proc.stop();
  await stack?.s3.stop();
}, 60_000);

const isWav = (bytes: Buffer) => bytes.subarray(0, 4).toString("latin1") === "RIFF";

interface Row {
  name: string;
  method: "GET" | "POST";
  path: string;
  body?: () => unknown;
  token?: "none" | "wrong" | "tts-only";
  check(answer: Answer): void | Promise<void>;
}

const ROWS: Row[] = [
  {
    name: "GET /ping answers without a token",
    method: "GET",
    path: "/ping",
    token: "none",
    check: (a) => {
      expect(a.status).toBe(200);
      expect(a.json).toMatchObject({ ok: true });
    },
  },
  {
    name: "GET /v1/metrics has the fields Cloud's UI reads",
    method: "GET",
    path: "/v1/metrics",
    check: (a) => {
      expect(a.status).toBe(200);
      const m = a.json as Record<string, unknown>;
      expect(typeof m.cpu_pct).toBe("number");
      expect(m.ram_total_mb as number).toBeGreaterThan(0);
      expect(m.ram_used_mb as number).toBeGreaterThan(0);
      expect(m.ram_used_mb as number).toBeLessThanOrEqual(m.ram_total_mb as number);
      expect(m.load).toHaveLength(3);
      expect(Array.isArray(m.gpus)).toBe(true);
      const processes = m.processes as Array<Record<string, unknown>>;
      expect(processes.map((p) => p.name)).toEqual(
        expect.arrayContaining(["voxgate-gateway", "backend sf-cpu"]),
      );
      for (const p of processes) {
        expect(Object.keys(p)).toEqual(
          expect.arrayContaining(["name", "cpu_pct", "gpu_mem_mb", "elapsed", "args"]),
        );
      }
    },
  },
  {
    name: "GET /v1/metrics without a token: 401 detail unauthorized",
    method: "GET",
    path: "/v1/metrics",
    token: "none",
    check: (a) => {
      expect(a.status).toBe(401);
      expect(a.json).toEqual({ detail: "unauthorized" });
    },
  },
  {
    name: "GET /v1/metrics with a wrong token: 403 detail forbidden",
    method: "GET",
    path: "/v1/metrics",
    token: "wrong",
    check: (a) => {
      expect(a.status).toBe(403);
      expect(a.json).toEqual({ detail: "forbidden" });
    },
  },
  {
    name: "POST /v1/tts with a token lacking the storyforge scope: 403",
    method: "POST",
    path: "/v1/tts",
    token: "tts-only",
    body: () => ({ engine: "espeak-ng", voice: "en-us", text: "hi", upload: true }),
    check: (a) => {
      expect(a.status).toBe(403);
      expect(a.json).toEqual({ detail: "forbidden" });
    },
  },
  {
    name: "GET /v1/engines lists the connected engines",
    method: "GET",
    path: "/v1/engines",
    check: (a) => {
      expect(a.json).toMatchObject({ ok: true });
      expect(a.json?.engines).toContain("espeak-ng");
    },
  },
  {
    name: "GET /v1/voice-clips lists {name, path}",
    method: "GET",
    path: "/v1/voice-clips",
    check: (a) => {
      expect(a.json?.ok).toBe(true);
      const clips = a.json?.clips as Array<{ name: string; path: string }>;
      expect(clips.length).toBeGreaterThan(0);
      expect(clips.find((c) => c.path === "/voices/en-us")?.name).toBeTruthy();
    },
  },
  {
    name: "GET /v1/voice-clips/file?path= gives WAV bytes with their content type",
    method: "GET",
    path: "/v1/voice-clips/file?path=%2Fvoices%2Fen-us",
    check: (a) => {
      expect(a.status).toBe(200);
      expect(a.contentType).toBe("audio/wav");
      expect(isWav(a.bytes)).toBe(true);
    },
  },
  {
    name: "GET /v1/voice-clips/file with a relative path: 400 bad_path",
    method: "GET",
    path: "/v1/voice-clips/file?path=voices%2Fen-us",
    check: (a) => {
      expect(a.status).toBe(400);
      expect(a.json).toEqual({ detail: "bad_path" });
    },
  },
  {
    name: "GET /v1/voice-clips/file of an unknown voice: 404 not_found",
    method: "GET",
    path: "/v1/voice-clips/file?path=%2Fvoices%2Fvc_aaaaaaaaaaaaaaaaaaaa",
    check: (a) => {
      expect(a.status).toBe(404);
      expect(a.json).toEqual({ detail: "not_found" });
    },
  },
  {
    name: "POST /v1/voices/train clones the clip (read from the private bucket); voice_ref is the voice",
    method: "POST",
    path: "/v1/voices/train",
    body: () => ({
      engine: "espeak-ng",
      name: "Maris",
      clip_url: clipUrl,
      sample_text: "Hello.",
    }),
    check: (a) => {
      expect(a.json).toMatchObject({ ok: true, engine: "espeak-ng", sample_text: "Hello." });
      expect(String(a.json?.voice_ref)).toMatch(/^vc_[a-z2-7]{20}$/);
    },
  },
  {
    name: "POST /v1/voices/train without clip_url: soft missing_clip_url",
    method: "POST",
    path: "/v1/voices/train",
    body: () => ({ engine: "xtts", name: "x", sample_text: "" }),
    check: (a) => {
      expect(a.status).toBe(200);
      expect(a.json).toEqual({ ok: false, error: "missing_clip_url" });
    },
  },
  {
    name: "POST /v1/tts (tts_job body) answers {ok, audio_b64, content_type, gpu}",
    method: "POST",
    path: "/v1/tts",
    body: () => ({
      engine: "espeak-ng",
      voice: "en-us",
      text: "The lighthouse stood silent on the cliff.",
      upload: true,
      gpu: 1,
      threads: 16,
      job_id: "tts_1700000000_ab12cd34",
      delivery: "calm",
      styletts2_alpha: 0.3,
      styletts2_beta: 0.7,
      styletts2_steps: 10,
      styletts2_scale: 1.0,
    }),
    check: (a) => {
      expect(a.json).toMatchObject({ ok: true, content_type: "audio/wav", gpu: 1 });
      expect(isWav(Buffer.from(String(a.json?.audio_b64), "base64"))).toBe(true);
    },
  },
  {
    name: "POST /v1/tts with a clip URL as voice (xtts style): the gateway reads and clones it",
    method: "POST",
    path: "/v1/tts",
    body: () => ({ engine: "espeak-ng", voice: clipUrl, text: "I can hear it.", upload: true }),
    check: (a) => {
      expect(a.json).toMatchObject({ ok: true, content_type: "audio/wav" });
      expect(String(a.json?.voice)).toMatch(/^vc_/);
      expect(isWav(Buffer.from(String(a.json?.audio_b64), "base64"))).toBe(true);
    },
  },
  {
    name: "POST /v1/tts for an engine no backend hosts: soft error naming it",
    method: "POST",
    path: "/v1/tts",
    body: () => ({ engine: "tortoise", voice: "tom", text: "Hello.", upload: true }),
    check: (a) => {
      expect(a.status).toBe(200);
      expect(a.json?.ok).toBe(false);
      expect(String(a.json?.error)).toContain("tortoise");
    },
  },
  {
    name: "POST /v1/tts with a metadata-address URL as voice: refused, named",
    method: "POST",
    path: "/v1/tts",
    body: () => ({
      engine: "xtts",
      voice: "http://169.254.169.254/latest/meta-data/",
      text: "Hello.",
      upload: true,
    }),
    check: (a) => {
      expect(a.json?.ok).toBe(false);
      expect(String(a.json?.error)).toMatch(/^url_not_allowed: /);
    },
  },
  {
    name: "POST /v1/tts without text: soft missing_text",
    method: "POST",
    path: "/v1/tts",
    body: () => ({ engine: "espeak-ng", voice: "en-us", text: "", upload: true }),
    check: (a) => expect(a.json).toEqual({ ok: false, error: "missing_text: text is empty" }),
  },
  {
    name: "POST /v1/audio/analyze {url} gives duration, LUFS and Cloud's features",
    method: "POST",
    path: "/v1/audio/analyze",
    body: () => ({ url: clipUrl }),
    check: (a) => {
      expect(a.json?.ok).toBe(true);
      expect(a.json?.duration_s as number).toBeGreaterThan(1);
      expect(typeof a.json?.lufs_i).toBe("number");
      const f = a.json?.features as Record<string, unknown>;
      expect(f.f0_hz_median as number).toBeGreaterThan(60);
      expect(f.f0_hz_p10 as number).toBeLessThanOrEqual(f.f0_hz_median as number);
      expect(f.f0_hz_p90 as number).toBeGreaterThanOrEqual(f.f0_hz_median as number);
      const median = f.f0_hz_median as number;
      expect(f.pitch_bucket).toBe(median < 140 ? "low" : median > 210 ? "high" : "medium");
      const centroid = f.centroid_hz_median as number;
      expect(centroid).toBeGreaterThan(0);
      expect(f.brightness).toBe(centroid < 1700 ? "dark" : centroid > 2600 ? "bright" : "neutral");
      expect(f.rms as number).toBeGreaterThan(0);
      expect(f.rms as number).toBeLessThan(1);
    },
  },
  {
    name: "POST /v1/audio/analyze of an object that does not exist: soft object_not_found",
    method: "POST",
    path: "/v1/audio/analyze",
    body: () => ({ url: clipUrl.replace("maris", "nobody") }),
    check: (a) => {
      expect(a.json?.ok).toBe(false);
      expect(String(a.json?.error)).toMatch(/^object_not_found: /);
    },
  },
  {
    name: "POST /v1/audio/age {audio_b64} without a classifier: soft error naming the capability",
    method: "POST",
    path: "/v1/audio/age",
    body: () => ({ audio_b64: clipB64 }),
    check: (a) => {
      expect(a.json?.ok).toBe(false);
      expect(a.json).not.toHaveProperty("age_years");
      expect(String(a.json?.error)).toMatch(
        /^age_classifier_unavailable: .*FEATURE_CLASSIFY_SPEAKER/,
      );
    },
  },
  {
    name: "POST /v1/audio/gender {audio_b64} without a classifier: Cloud's f0 rule",
    method: "POST",
    path: "/v1/audio/gender",
    body: () => ({ audio_b64: clipB64 }),
    check: (a) => {
      expect(a.json).toMatchObject({ ok: true, gender_estimated_from_f0: true });
      const f0 = a.json?.f0_hz_median as number;
      expect(a.json?.gender).toBe(f0 >= 170 ? "female" : "male");
    },
  },
  {
    name: "POST /v1/audio/gender {url} (Cloud's fallback form) reads the private object",
    method: "POST",
    path: "/v1/audio/gender",
    body: () => ({ url: clipUrl }),
    check: (a) => expect(["male", "female"]).toContain(a.json?.gender),
  },
  {
    name: "POST /v1/audio/gender without audio: soft missing_audio",
    method: "POST",
    path: "/v1/audio/gender",
    body: () => ({}),
    check: (a) =>
      expect(a.json).toEqual({ ok: false, error: "missing_audio: send audio_b64 or url" }),
  },
  {
    name: "POST /v1/llm (voice traits body) answers an OpenAI chat completion through the LLM path",
    method: "POST",
    path: "/v1/llm",
    body: () => ({
      model: GEMMA,
      messages: [{ role: "user", content: TRAITS_PROMPT }],
      temperature: 0.2,
      max_tokens: 220,
    }),
    check: (a) => {
      const choices = a.json?.choices as Array<{ message: { content: string } }>;
      expect(choices[0]?.message.content).toBe(
        expectedReply([{ role: "user", content: TRAITS_PROMPT }], 220),
      );
    },
  },
  {
    name: "POST /v1/llm for a model no backend serves: soft llm_unavailable naming the capability",
    method: "POST",
    path: "/v1/llm",
    body: () => ({
      model: "google/gemma-2-27b-it",
      messages: [{ role: "user", content: "Pick a name." }],
      temperature: 0.95,
      max_tokens: 20,
    }),
    check: (a) => {
      expect(a.json?.ok).toBe(false);
      expect(String(a.json?.error)).toMatch(/^llm_unavailable: .*FEATURE_GENERATE_TEXT/);
    },
  },
  {
    name: "POST /v1/jobs/abort {job_id} answers ok (best-effort, nothing running)",
    method: "POST",
    path: "/v1/jobs/abort",
    body: () => ({ job_id: "tts_1700000000_ab12cd34" }),
    check: (a) => expect(a.json).toMatchObject({ ok: true, aborted_calls: 0 }),
  },
  {
    name: "POST /v1/admin/vllm/reconfigure {gpus}: soft not_supported",
    method: "POST",
    path: "/v1/admin/vllm/reconfigure",
    body: () => ({ gpus: [2] }),
    check: (a) => {
      // Cloud calls r.json() whatever the status and stores it; its UI reads ok (and gpus if ok).
      expect(a.status).toBe(200);
      expect(a.contentType).toBe("application/json");
      expect(a.json?.ok).toBe(false);
      expect(String(a.json?.error)).toMatch(/^not_supported: .*GPUs 2\b/);
    },
  },
  {
    name: "POST /v1/admin/vllm/reconfigure without a list of GPU indexes: soft bad_field",
    method: "POST",
    path: "/v1/admin/vllm/reconfigure",
    body: () => ({ gpus: ["two"] }),
    check: (a) => {
      expect(a.status).toBe(200);
      expect(a.json?.ok).toBe(false);
      expect(String(a.json?.error)).toMatch(/^bad_field: gpus must be a list/);
    },
  },
  {
    name: "a body nested past the depth limit: soft json_too_deep naming the setting",
    method: "POST",
    path: "/v1/llm",
    body: () =>
      JSON.parse(
        `${"[".repeat(80)}${"]".repeat(80)}`.replace(/^\[/, '{"a":[').replace(/\]$/, "]}"),
      ),
    check: (a) => {
      expect(a.json?.ok).toBe(false);
      expect(String(a.json?.error)).toMatch(/^json_too_deep: .*VOXGATE_MAX_JSON_DEPTH/);
    },
  },
  {
    name: "a body over the size limit: 413 naming the setting",
    method: "POST",
    path: "/v1/audio/age",
    body: () => ({ audio_b64: "A".repeat(700_000) }),
    check: (a) => {
      expect(a.status).toBe(413);
      expect(String(a.json?.error)).toMatch(
        /^request_too_large: .*VOXGATE_STORYFORGE_MAX_JSON_BYTES/,
      );
    },
  },
];

describe("StoryForge Cloud's calls against a voxgate gateway", () => {
  for (const row of ROWS) {
    it(row.name, { timeout: 120_000 }, async () => {
      if (!stack) throw new Error("no stack");
      const token =
        row.token === "none"
          ? undefined
          : row.token === "wrong"
            ? generateToken()
            : row.token === "tts-only"
              ? TTS_ONLY_TOKEN
              : stack.gateway.clientToken;
      await row.check(await call(row.method, row.path, row.body?.(), token));
    });
  }

  it("the surface is mounted under /storyforge only: /v1/tts at the root stays the REST binding", async () => {
    if (!stack) throw new Error("no stack");
    const res = await fetch(`${stack.gateway.url}/v1/tts`, {
      method: "POST",
      headers: cloudHeaders(stack.gateway.clientToken, true),
      body: JSON.stringify({ text: "Hi.", voice: "en-us" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^audio\/wav/);
  });
});
