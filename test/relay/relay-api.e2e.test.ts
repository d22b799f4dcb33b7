/**
 * The Qwen3 relay API (decay256/qwen3-tts-server `contracts/relay-api.yaml`, and the bodies its
 * clients send: the web backend's `tts_proxy`, `client/tts_client.py`) against an in-process
 * gateway with a real agent process (espeak-ng) and a RunPod emulator. Each row sends a request
 * exactly as the yaml and those clients write it and checks the fields they read, on success and
 * error paths. Rows run in order (a prompt is cloned before it is spoken and deleted).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { waitUntil } from "../helpers/failover-stack.js";
import { type RelayStack, startRelayStack } from "./relay-stack.js";

const REFERENCE_TEXT =
  "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore.";

type Json = Record<string, unknown> & {
  error?: string;
  prompts?: Array<Record<string, unknown>>;
};

interface Row {
  /** What the row shows. */
  name: string;
  /** Stack: the full one (agent + RunPod), an empty one, RunPod only, or RunPod scaled to zero. */
  on?: "full" | "empty" | "runpod" | "cold";
  /** Runs before the request (fault knobs). */
  before?: () => void;
  method: string;
  path: string;
  /** JSON body (a function: built when the row runs). */
  body?: unknown | (() => unknown);
  headers?: Record<string, string>;
  /** Token to send; null for none. @default the client token */
  token?: "client" | "other" | "ttsOnly" | null;
  status: number;
  /** Checks on the answer (JSON, or the raw response for audio). */
  check?: (json: Json, res: Response, bytes: Buffer) => void;
}

let full: RelayStack;
let empty: RelayStack;
let runpodOnly: RelayStack;
let cold: RelayStack;
let referenceB64 = "";

beforeAll(async () => {
  [full, empty, runpodOnly, cold] = await Promise.all([
    startRelayStack({ agents: { "relay-a": {} }, runpod: {} }),
    startRelayStack(),
    startRelayStack({ runpod: {} }),
    startRelayStack({ runpod: { workers: 0 } }),
  ]);
  // The reference recording: real speech, from the agent's espeak-ng engine.
  const res = await full.fetch("/v1/tts", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text: REFERENCE_TEXT }),
  });
  expect(res.status).toBe(200);
  referenceB64 = Buffer.from(await res.arrayBuffer()).toString("base64");
}, 120_000);

afterAll(async () => {
  await Promise.all([full?.close(), empty?.close(), runpodOnly?.close(), cold?.close()]);
});

const isRiff = (bytes: Buffer) => bytes.subarray(0, 4).toString() === "RIFF";

/** The web backend's `CreateClonePromptRequest` as `model_dump(exclude_none=True)` sends it. */
const clone = (name: string, tags: string[], emotion: string) => () => ({
  audio: referenceB64,
  name,
  ref_text: REFERENCE_TEXT,
  tags,
  format: "wav",
  character: "Maya",
  emotion,
});

const rows: Row[] = [
  // ── status (yaml: RunPodHealth, TTSStatus) ──
  {
    name: "GET /api/v1/status: relay, tunnel and RunPod fields",
    method: "GET",
    path: "/api/v1/status",
    status: 200,
    check(json) {
      expect(json).toMatchObject({
        relay: "ok",
        tunnel_connected: true,
        connected_clients: 1,
        runpod_configured: true,
        runpod_available: true,
      });
      expect(typeof json.uptime_seconds).toBe("number");
      const health = json.runpod_health as { workers: Record<string, number> };
      for (const key of ["ready", "idle", "initializing", "running", "throttled", "unhealthy"]) {
        expect(typeof health.workers[key], key).toBe("number");
      }
      expect((json.local as { models_loaded: string[] }).models_loaded).toContain("espeak-ng");
    },
  },
  {
    name: "GET /api/v1/tts/status: the frontend's TTSStatus",
    method: "GET",
    path: "/api/v1/tts/status",
    status: 200,
    check(json) {
      expect(json).toMatchObject({
        status: "ok",
        tunnel_connected: true,
        runpod_configured: true,
        runpod_available: true,
        prompts_count: 0,
      });
      expect(json.models_loaded).toContain("espeak-ng");
      const jobs = (json.runpod_health as { jobs: Record<string, number> }).jobs;
      for (const key of ["queued", "inProgress", "completed", "failed", "retried", "badfailed"]) {
        expect(typeof jobs[key], key).toBe("number");
      }
    },
  },
  {
    name: "GET /api/v1/tts/status without backends: tunnel down, RunPod not configured",
    on: "empty",
    method: "GET",
    path: "/api/v1/tts/status",
    status: 200,
    check(json) {
      expect(json).toMatchObject({
        status: "ok",
        tunnel_connected: false,
        runpod_configured: false,
        runpod_available: false,
        models_loaded: [],
        prompts_count: 0,
      });
      expect(json).not.toHaveProperty("runpod_health");
    },
  },
  {
    name: "POST /api/v1/tts/warmup {} with an agent up: connected",
    method: "POST",
    path: "/api/v1/tts/warmup",
    body: {},
    status: 200,
    check: (json) => expect(json).toMatchObject({ status: "connected" }),
  },
  {
    name: "POST /api/v1/tts/warmup with an idle RunPod worker: noop (no job submitted)",
    on: "runpod",
    method: "POST",
    path: "/api/v1/tts/warmup",
    body: {},
    status: 200,
    check(json) {
      expect(json.status).toBe("noop");
      expect(json.workers_ready).toBeGreaterThan(0);
      expect(runpodOnly.runpod?.jobs()).toHaveLength(0);
    },
  },
  {
    name: "POST /api/v1/tts/warmup with RunPod scaled to zero: warming, one job submitted",
    on: "cold",
    method: "POST",
    path: "/api/v1/tts/warmup",
    body: {},
    status: 200,
    check(json) {
      expect(json).toEqual({ status: "warming", message: "RunPod worker requested" });
      expect(cold.runpod?.jobs().map((j) => j.input)).toEqual([{ warmup: true }]);
    },
  },
  {
    name: "GET /api/v1/tts/status when RunPod's /health fails: the error variant",
    on: "cold",
    before: () => {
      if (cold.runpod) cold.runpod.faults.healthStatus = 500;
    },
    method: "GET",
    path: "/api/v1/tts/status",
    status: 200,
    check(json) {
      expect(json).toMatchObject({ runpod_configured: true, runpod_available: false });
      expect(json.runpod_health).toHaveProperty("error");
      expect(json.runpod_health).not.toHaveProperty("workers");
    },
  },
  {
    name: "POST /api/v1/tts/warmup when RunPod cannot be reached: 502 {error}",
    on: "cold",
    method: "POST",
    path: "/api/v1/tts/warmup",
    body: {},
    status: 502,
    check: (json) => expect(json.error).toMatch(/^Failed to submit warmup job to RunPod/),
  },
  {
    name: "POST /api/v1/voices/clone-prompt/batch: per-item results",
    method: "POST",
    path: "/api/v1/voices/clone-prompt/batch",
    body: () => ({
      items: [
        { audio: referenceB64, name: "batch-one", ref_text: REFERENCE_TEXT, tags: ["batch"] },
        { audio: "!!!", name: "batch-bad" },
      ],
    }),
    status: 200,
    check(json) {
      expect(json).toMatchObject({ total: 2, succeeded: 1 });
      const results = json.results as Array<Record<string, unknown>>;
      expect(results[0]).toMatchObject({ name: "batch-one", status: "created" });
      expect(results[1]).toMatchObject({ name: "batch-bad", status: "error" });
    },
  },
  {
    name: "DELETE the batch prompt again",
    method: "DELETE",
    path: "/api/v1/voices/prompts/batch-one",
    status: 200,
  },
  {
    name: "POST /api/v1/tts/warmup without RunPod or agent: 503 {error}",
    on: "empty",
    method: "POST",
    path: "/api/v1/tts/warmup",
    body: {},
    status: 503,
    check: (json) => expect(json.error).toBe("RunPod is not configured — cannot warm up"),
  },

  // ── clone prompts by name ──
  {
    name: "POST /api/v1/voices/clone-prompt: {name, status: created, gcs_path}",
    method: "POST",
    path: "/api/v1/voices/clone-prompt",
    body: clone("maya-calm", ["maya", "calm"], "calm"),
    status: 200,
    check(json) {
      expect(json).toMatchObject({ name: "maya-calm", status: "created", prompt_id: "maya-calm" });
      expect(json.gcs_path).toMatch(/^prompts\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
    },
  },
  {
    name: "POST /api/v1/voices/clone-prompt with the local server's ref_audio_base64",
    method: "POST",
    path: "/api/v1/voices/clone-prompt",
    body: () => {
      const { audio, ...rest } = clone("maya-angry", ["maya", "angry"], "angry")();
      return { ...rest, ref_audio_base64: audio };
    },
    status: 200,
    check: (json) => expect(json).toMatchObject({ name: "maya-angry", status: "created" }),
  },
  {
    name: "POST /api/v1/voices/clone-prompt without audio: 400 {error}",
    method: "POST",
    path: "/api/v1/voices/clone-prompt",
    body: { name: "nothing" },
    status: 400,
    check: (json) => expect(json.error).toMatch(/Missing 'audio'/),
  },
  {
    name: "POST /api/v1/voices/clone-prompt with a name that is a path: 400",
    method: "POST",
    path: "/api/v1/voices/clone-prompt",
    body: () => ({ ...clone("x", [], "calm")(), name: "../etc/passwd" }),
    status: 400,
    check: (json) => expect(json.error).toMatch(/^name/),
  },
  {
    name: "POST /api/v1/voices/clone-prompt with no backend that clones: 503",
    on: "empty",
    method: "POST",
    path: "/api/v1/voices/clone-prompt",
    body: clone("maya-calm", ["maya"], "calm"),
    status: 503,
    check: (json) => expect(typeof json.error).toBe("string"),
  },
  {
    name: "GET /api/v1/voices/prompts: {prompts, count}, sorted by name",
    method: "GET",
    path: "/api/v1/voices/prompts",
    status: 200,
    check(json) {
      expect(json.count).toBe(2);
      expect(json.prompts?.map((p) => p.name)).toEqual(["maya-angry", "maya-calm"]);
      expect(json.prompts?.[1]).toMatchObject({
        tags: ["maya", "calm"],
        ref_text: REFERENCE_TEXT,
        character: "Maya",
        emotion: "calm",
        icl_mode: true,
      });
      expect(json.prompts?.[1]?.ref_audio_duration_s).toBeGreaterThan(1);
    },
  },
  {
    name: "GET /api/v1/voices/prompts?tags=maya,angry: every tag must match",
    method: "GET",
    path: "/api/v1/voices/prompts?tags=maya,angry",
    status: 200,
    check: (json) => expect(json.prompts?.map((p) => p.name)).toEqual(["maya-angry"]),
  },
  {
    name: "GET /api/v1/voices/prompts for another token: its own (none)",
    method: "GET",
    path: "/api/v1/voices/prompts",
    token: "other",
    status: 200,
    check: (json) => expect(json).toEqual({ prompts: [], count: 0 }),
  },
  {
    name: "GET /api/v1/voices/prompts/search?character=maya&emotion=calm",
    method: "GET",
    path: "/api/v1/voices/prompts/search?character=maya&emotion=calm",
    status: 200,
    check: (json) => expect(json.prompts?.map((p) => p.name)).toEqual(["maya-calm"]),
  },
  {
    name: "GET /api/v1/voices/prompts/{name}: one prompt",
    method: "GET",
    path: "/api/v1/voices/prompts/maya-calm",
    status: 200,
    check: (json) => expect(json).toMatchObject({ name: "maya-calm", model: "espeak-ng" }),
  },
  {
    name: "GET /api/v1/voices/characters: from the prompts' character labels",
    method: "GET",
    path: "/api/v1/voices/characters",
    status: 200,
    check(json) {
      expect(json).toEqual({
        characters: [
          { character: "Maya", prompt_count: 2, emotions: ["angry", "calm"], modes: [] },
        ],
        count: 1,
      });
    },
  },
  {
    name: "GET /api/v1/tts/status counts the caller's prompts",
    method: "GET",
    path: "/api/v1/tts/status",
    status: 200,
    check: (json) => expect(json.prompts_count).toBe(2),
  },

  // ── speaking with a prompt by name ──
  {
    name: "POST /api/v1/tts/clone-prompt (web backend): JSON with base64 audio",
    method: "POST",
    path: "/api/v1/tts/clone-prompt",
    body: { voice_prompt: "maya-calm", text: "Hello there.", language: "Auto", format: "wav" },
    status: 200,
    check(json, res) {
      expect(json.format).toBe("wav");
      expect(json.duration_s).toBeGreaterThan(0.3);
      expect(json.sample_rate).toBe(22050);
      expect(isRiff(Buffer.from(String(json.audio), "base64"))).toBe(true);
      expect(Number(res.headers.get("x-duration-seconds"))).toBe(json.duration_s);
    },
  },
  {
    name: "POST /api/v1/tts/clone-prompt with Accept: audio/wav (the yaml's binary answer)",
    method: "POST",
    path: "/api/v1/tts/clone-prompt",
    headers: { accept: "audio/wav" },
    body: { voice_prompt: "maya-calm", text: "Hello there.", language: "English" },
    status: 200,
    check(_json, res, bytes) {
      expect(res.headers.get("content-type")).toBe("audio/wav");
      expect(isRiff(bytes)).toBe(true);
      expect(Number(res.headers.get("x-duration-seconds"))).toBeGreaterThan(0.3);
    },
  },
  {
    name: "POST /api/v1/tts/clone-prompt with another owner's prompt name: 404",
    method: "POST",
    path: "/api/v1/tts/clone-prompt",
    token: "other",
    body: { voice_prompt: "maya-calm", text: "Hello." },
    status: 404,
    check: (json) => expect(json.error).toBe("Clone prompt 'maya-calm' not found"),
  },
  {
    name: "POST /api/v1/tts/clone-prompt without text: 400",
    method: "POST",
    path: "/api/v1/tts/clone-prompt",
    body: { voice_prompt: "maya-calm" },
    status: 400,
    check: (json) => expect(json.error).toBe("Missing 'text' and 'voice_prompt'"),
  },
  {
    name: "POST /api/v1/tts/clone-prompt with a language no engine names: 400",
    method: "POST",
    path: "/api/v1/tts/clone-prompt",
    body: { voice_prompt: "maya-calm", text: "Hi.", language: "Klingon!" },
    status: 400,
    check: (json) => expect(json.error).toMatch(/language "Klingon!"/),
  },
  {
    name: "voxgate's own REST speaks a prompt by name too (prompt_name)",
    method: "POST",
    path: "/v1/tts",
    body: { text: "Named prompt.", prompt_name: "maya-angry" },
    status: 200,
    check: (_json, _res, bytes) => expect(isRiff(bytes)).toBe(true),
  },
  {
    name: "the OpenAI-compatible API speaks a prompt name given as its voice",
    method: "POST",
    path: "/v1/audio/speech",
    body: { model: "tts-1", input: "Named prompt.", voice: "maya-calm", response_format: "wav" },
    status: 200,
    check: (_json, _res, bytes) => expect(isRiff(bytes)).toBe(true),
  },
  {
    name: "POST /api/v1/tts/synthesize with voice_id = a prompt name (tts_client.py)",
    method: "POST",
    path: "/api/v1/tts/synthesize",
    body: { text: "Hello world", voice_id: "maya-calm", format: "wav" },
    status: 200,
    check(_json, res, bytes) {
      expect(isRiff(bytes)).toBe(true);
      expect(res.headers.get("x-voice-id")).toBe("maya-calm");
      expect(Number(res.headers.get("x-sample-rate"))).toBe(22050);
    },
  },
  {
    name: "POST /api/v1/tts/synthesize default format mp3",
    method: "POST",
    path: "/api/v1/tts/synthesize",
    body: { text: "Hello world", voice_id: "en-us" },
    status: 200,
    check(_json, res, bytes) {
      expect(res.headers.get("content-type")).toBe("audio/mpeg");
      expect(bytes.byteLength).toBeGreaterThan(1000);
      expect(Number(res.headers.get("x-duration-seconds"))).toBeGreaterThan(0.3);
    },
  },
  {
    name: "POST /api/v1/tts/synthesize with an unknown voice: 404",
    method: "POST",
    path: "/api/v1/tts/synthesize",
    body: { text: "Hi", voice_id: "nobody" },
    status: 404,
    check: (json) => expect(json.error).toBe("Voice not found: nobody"),
  },
  {
    name: "POST /api/v1/tts/synthesize when the backend fails: 502",
    on: "runpod",
    method: "POST",
    path: "/api/v1/tts/synthesize",
    body: { text: "Hi", voice_id: "en-us", format: "wav" },
    status: 502,
    check: (json) => expect(typeof json.error).toBe("string"),
  },
  {
    name: "POST /api/v1/tts/synthesize with ref_audio (one-shot clone): 503 naming it",
    method: "POST",
    path: "/api/v1/tts/synthesize",
    body: () => ({ text: "Hi", ref_audio: referenceB64, ref_text: REFERENCE_TEXT }),
    status: 503,
    check: (json) => expect(json.capability).toBe("voice_clone_oneshot"),
  },

  // ── modes only the Qwen3 model server has ──
  {
    name: "POST /api/v1/voices/design: 503 naming the capability",
    method: "POST",
    path: "/api/v1/voices/design",
    body: { text: "Hi", instruct: "A warm voice", language: "English", format: "wav" },
    status: 503,
    check(json) {
      expect(json.error).toMatch(/voice_design/);
      expect(json.capability).toBe("voice_design");
    },
  },
  {
    name: "POST /api/v1/voices/design without instruct: 400 first",
    method: "POST",
    path: "/api/v1/voices/design",
    body: { text: "Hi" },
    status: 400,
    check: (json) => expect(json.error).toBe("Missing 'text' and 'instruct'"),
  },
  {
    name: "POST /api/v1/voices/design/batch: 503 voice_design_batch",
    method: "POST",
    path: "/api/v1/voices/design/batch",
    body: {
      items: [{ name: "maya_neutral", text: "Hi", instruct: "calm" }],
      format: "wav",
      create_prompts: true,
      tags_prefix: ["maya"],
    },
    status: 503,
    check: (json) => expect(json.capability).toBe("voice_design_batch"),
  },
  {
    name: "POST /api/v1/voices/cast: 503 voice_cast",
    method: "POST",
    path: "/api/v1/voices/cast",
    body: { character: "Maya", description: "A young woman", language: "English" },
    status: 503,
    check: (json) => expect(json.capability).toBe("voice_cast"),
  },
  {
    name: "GET /api/v1/voices/emotions: 503 emotion_presets",
    method: "GET",
    path: "/api/v1/voices/emotions",
    status: 503,
    check: (json) => expect(json.capability).toBe("emotion_presets"),
  },

  // ── auth ──
  {
    name: "no token: 401 {error}",
    method: "GET",
    path: "/api/v1/voices/prompts",
    token: null,
    status: 401,
    check: (json) => expect(json.error).toMatch(/Bearer/),
  },
  {
    name: "a token without the voices scope: 403 {error}",
    method: "GET",
    path: "/api/v1/voices/prompts",
    token: "ttsOnly",
    status: 403,
    check: (json) => expect(json.error).toMatch(/voices/),
  },
  {
    name: "wrong method: 405 with Allow",
    method: "PUT",
    path: "/api/v1/voices/prompts",
    status: 405,
    check: (_json, res) => expect(res.headers.get("allow")).toBe("GET"),
  },

  {
    name: "a body nested past VOXGATE_MAX_JSON_DEPTH: 400 before it is parsed",
    method: "POST",
    path: "/api/v1/tts/clone-prompt",
    body: () => JSON.parse(`${"[".repeat(200)}${"]".repeat(200)}`),
    status: 400,
    check: (json) => expect(json.error).toMatch(/VOXGATE_MAX_JSON_DEPTH/),
  },
  {
    name: "a body over VOXGATE_MAX_REQUEST_BYTES: 413",
    method: "POST",
    path: "/api/v1/voices/clone-prompt",
    body: () => ({ name: "big", audio: "A".repeat(9 * 1024 * 1024) }),
    status: 413,
    check: (json) => expect(json.error).toMatch(/VOXGATE_MAX_REQUEST_BYTES/),
  },

  // ── debug ──
  {
    name: "GET /api/v1/debug: memory, backends, in-flight calls, registry events",
    method: "GET",
    path: "/api/v1/debug",
    status: 200,
    check(json) {
      expect(json.mem_rss_mb).toBeGreaterThan(10);
      expect(json.pending_requests).toBe(0);
      const backends = json.backends as Array<{ id: string; state: string }>;
      expect(backends.map((b) => b.id).sort()).toEqual(["relay-a", "runpod-relay"]);
      const events = json.recent_events as Array<{ type: string; backend?: string }>;
      expect(events.some((e) => e.type === "backend_added" && e.backend === "relay-a")).toBe(true);
    },
  },

  // ── delete ──
  {
    name: "DELETE /api/v1/voices/prompts/{name}: {name, status: deleted}",
    method: "DELETE",
    path: "/api/v1/voices/prompts/maya-angry",
    status: 200,
    check: (json) => expect(json).toEqual({ name: "maya-angry", status: "deleted" }),
  },
  {
    name: "DELETE again: 404 {error}",
    method: "DELETE",
    path: "/api/v1/voices/prompts/maya-angry",
    status: 404,
    check: (json) => expect(json.error).toBe("Prompt 'maya-angry' not found"),
  },
  {
    name: "the deleted name no longer speaks",
    method: "POST",
    path: "/api/v1/tts/clone-prompt",
    body: { voice_prompt: "maya-angry", text: "Gone." },
    status: 404,
  },
];

describe("the relay API as relay-api.yaml and its clients write it", () => {
  for (const row of rows) {
    it(row.name, async () => {
      const stack = { full, empty, runpod: runpodOnly, cold }[row.on ?? "full"];
      row.before?.();
      const body = typeof row.body === "function" ? row.body() : row.body;
      const res = await stack.fetch(row.path, {
        method: row.method,
        headers: {
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...row.headers,
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        token: row.token === null ? null : stack.tokens[row.token ?? "client"],
      });
      const bytes = Buffer.from(await res.arrayBuffer());
      const isJson = (res.headers.get("content-type") ?? "").startsWith("application/json");
      const json = (isJson ? JSON.parse(bytes.toString("utf8")) : {}) as Json;
      expect(res.status, `${row.method} ${row.path}: ${bytes.toString("utf8", 0, 300)}`).toBe(
        row.status,
      );
      if (res.status >= 400) expect(typeof json.error).toBe("string");
      row.check?.(json, res, bytes);
      // The first write opens the gateway's database: seconds, more on a loaded machine.
    }, 120_000);
  }
});

describe("/ws/debug, the relay's live debug WebSocket", () => {
  const socketUrl = () => `${full.url.replace(/^http/, "ws")}/ws/debug`;

  it("sends recent registry events at once, then new ones as they happen", async () => {
    const ws = new WebSocket(socketUrl(), {
      headers: { authorization: `Bearer ${full.tokens.client}` },
    });
    const events: Array<{ type: string; backend?: string; path?: string }> = [];
    ws.on("message", (data) => events.push(JSON.parse(String(data))));
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    try {
      await waitUntil(() => events.some((e) => e.type === "backend_added"), "history", 10_000);
      expect(events.some((e) => e.backend === "relay-a")).toBe(true);
      const res = await full.fetch("/api/v1/voices/cast", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ character: "Maya", description: "x" }),
      });
      expect(res.status).toBe(503);
      await waitUntil(
        () => events.some((e) => e.type === "call_failed" && e.path === "/api/v1/voices/cast"),
        "the new event",
        10_000,
      );
    } finally {
      ws.close();
    }
  });

  it("refuses a socket without an admin token with the relay's JSON error", async () => {
    for (const [token, status] of [
      [undefined, 401],
      [full.tokens.other, 403],
    ] as const) {
      const ws = new WebSocket(socketUrl(), {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        ws.once("unexpected-response", (_req, res) => {
          let body = "";
          res.on("data", (c: Buffer) => {
            body += c.toString();
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        ws.once("open", () => reject(new Error("the socket opened")));
        ws.once("error", () => {});
      });
      expect(refused.status).toBe(status);
      expect(JSON.parse(refused.body)).toHaveProperty("error");
    }
  });
});
