/**
 * StoryForge Cloud against voxgate mounted at the root (VOXGATE_STORYFORGE_BASE_PATH=/, so Cloud
 * keeps its old GATEWAY_BASE path), with a fake Tinybox node (test/model-servers) as the GPU side
 * behind an `--engine tinybox-http` agent. Real processes.
 *
 * - Cloud's abort of a TTS sample job: `POST /api/tts_job` sends one `/v1/tts` per chunk, in
 *   parallel, all with the same `job_id`, and `POST /api/jobs/abort` sends `/v1/jobs/abort
 *   {job_id}` (STORYFORGE.md §1.1). Issue 13: "`job_id` tags the call so `/v1/jobs/abort {job_id}`
 *   cancels every call with it". The node is made slow so the calls are still running when the
 *   abort comes: every call of that job answers Cloud's soft `aborted` error, the node is told to
 *   abort each, and a call of another job keeps running.
 * - `/v1/metrics` carries the GPU host's figures (issue 13: "from the gateway host plus agents'
 *   GPU stats"), as the node's nvidia-smi report reaches the agent.
 * - `/v1/audio/age` and `/v1/audio/gender` answer from the node's classifiers when a backend has
 *   them (`age_years`; `gender` follows the classifier, not the pitch rule), bytes sent by the
 *   gateway.
 * - The root mount's documented clash: `/v1/tts` and `/v1/metrics` answer in StoryForge's JSON,
 *   while `/v1/speech:synthesize` and `/metrics` keep voxgate's own answers.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../services/auth/token-codec.js";
import { waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";
import { type FakeTinyboxNode, startFakeTinyboxNode } from "../model-servers/index.js";

const NODE_TOKEN = generateToken();
const JOB = "tts_1700000000_ab12cd34";
const OTHER_JOB = "tts_1700000001_ffee0011";

let node: FakeTinyboxNode;
let gateway: GatewayProcess;
let agent: ReturnType<typeof startAgentProcess> | undefined;
let dir = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "voxgate-sf-abort-"));
  node = await startFakeTinyboxNode({ token: NODE_TOKEN });
  gateway = await startGatewayProcess({
    readyTimeoutMs: 90_000,
    env: {
      VOXGATE_DATA_DIR: join(dir, "gateway"),
      VOXGATE_STORYFORGE_BASE_PATH: "/",
      VOXGATE_AGENT_KEEPALIVE_TIMEOUT_MS: "120000",
      VOXGATE_HEARTBEAT_MISS_LIMIT: "100",
      VOXGATE_PROBE_TIMEOUT_MS: "15000",
      VOXGATE_PROBE_FAILURE_THRESHOLD: "20",
    },
  });
  agent = startAgentProcess(gateway, "tinybox", {
    VOXGATE_AGENT_ENGINE: "tinybox-http",
    VOXGATE_AGENT_ENGINE_URL: node.url,
    VOXGATE_AGENT_ENGINE_API_KEY: NODE_TOKEN,
    VOXGATE_AGENT_SLOTS: "4",
    VOXGATE_AGENT_GPU_POLL_MS: "200",
    VOXGATE_AGENT_PROMPT_CACHE_DIR: join(dir, "cache"),
    VOXGATE_GATEWAY_KEEPALIVE_TIMEOUT_MS: "120000",
  });
  await agent.proc.waitForLog((l) => l.msg === "connected to gateway", 150_000);
  await gateway.proc.waitForLog((l) => l.msg === "agent ready" && l.agent === "tinybox", 150_000);
}, 240_000);

afterAll(async () => {
  await agent?.proc.stop("SIGTERM");
  await gateway?.proc.stop("SIGTERM");
  await node?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

/** What Cloud's `requests.post(GATEWAY_BASE + path, json=body, headers=_h())` sends. */
const cloudPost = (path: string, body: unknown) =>
  fetch(`${gateway.url}${path}`, {
    method: "POST",
    headers: {
      "user-agent": "python-requests/2.32.3",
      accept: "*/*",
      "content-type": "application/json",
      authorization: `Bearer ${gateway.clientToken}`,
    },
    body: JSON.stringify(body),
  });

/** The chunk body of Cloud's tts_job worker. */
const chunk = (text: string, jobId: string, gpu: number) => ({
  engine: "tortoise",
  voice: "tom",
  text,
  upload: true,
  gpu,
  threads: 16,
  job_id: jobId,
});

describe("Cloud's /v1/jobs/abort {job_id}", () => {
  it("cancels every running /v1/tts call of that job, and only those", {
    timeout: 180_000,
  }, async () => {
    // Long enough that nothing finishes before the abort, however loaded the machine.
    node.knobs.ttsDelayMs = 120_000;
    const before = node.requests.length;
    const texts = ["Chunk one of the sample.", "Chunk two of the sample.", "Another job's chunk."];
    const answers = [
      cloudPost("/v1/tts", chunk(texts[0] ?? "", JOB, 0)),
      cloudPost("/v1/tts", chunk(texts[1] ?? "", JOB, 1)),
      cloudPost("/v1/tts", chunk(texts[2] ?? "", OTHER_JOB, 0)),
    ].map((p) =>
      p.then(async (r) => ({
        status: r.status,
        json: (await r.json()) as Record<string, unknown>,
      })),
    );
    let otherSettled = false;
    answers[2]?.finally(() => {
      otherSettled = true;
    });
    // Every chunk reached the node (the GPU is working on all three).
    const ttsOf = (text: string) =>
      node.requests
        .slice(before)
        .find((r) => r.path === "/v1/tts" && (r.body as { text?: string }).text === text);
    const nodeCalls = await waitFor(
      async () => {
        const found = texts.map(ttsOf);
        return found.every((r) => r !== undefined)
          ? found.filter((r) => r !== undefined)
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50, what: "the node's three /v1/tts requests" },
    );
    const nodeJobIds = nodeCalls.map((r) => (r.body as { job_id: string }).job_id);

    const abort = await cloudPost("/v1/jobs/abort", { job_id: JOB });
    expect(abort.status).toBe(200);
    expect(await abort.json()).toMatchObject({ ok: true, job_id: JOB, aborted_calls: 2 });

    // Cloud's tts_job reads ok/error: both chunks of the job answer the soft aborted error.
    for (const answer of answers.slice(0, 2)) {
      const { status, json } = await (answer as NonNullable<typeof answer>);
      expect(status).toBe(200);
      expect(json.ok).toBe(false);
      expect(String(json.error)).toMatch(/^aborted: .*tts_1700000000_ab12cd34/);
      expect(json.audio_b64).toBeUndefined();
    }
    // The node was told to stop both (its own job ids, as the agent sent them).
    const nodeAborts = () =>
      node.requests
        .slice(before)
        .filter((r) => r.path === "/v1/jobs/abort")
        .map((r) => (r.body as { job_id: string }).job_id);
    await waitFor(async () => nodeJobIds.slice(0, 2).every((id) => nodeAborts().includes(id)), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: "the node's /v1/jobs/abort for both chunks",
    });
    // The other job's call is untouched: still running, never aborted on the node.
    expect(otherSettled).toBe(false);
    expect(nodeAborts()).not.toContain(nodeJobIds[2]);

    // Its own abort ends it too (and leaves nothing running when the test ends).
    const second = await cloudPost("/v1/jobs/abort", { job_id: OTHER_JOB });
    expect(await second.json()).toMatchObject({ ok: true, aborted_calls: 1 });
    expect(String((await answers[2])?.json.error)).toMatch(/^aborted: /);
    node.knobs.ttsDelayMs = 0;
  });

  it("GET /v1/metrics carries the GPU host's GPUs and GPU processes in the node's field names", {
    timeout: 60_000,
  }, async () => {
    const metrics = await waitFor(
      async () => {
        const res = await fetch(`${gateway.url}/v1/metrics`, {
          headers: { authorization: `Bearer ${gateway.clientToken}` },
        });
        const body = (await res.json()) as {
          gpus: Array<Record<string, unknown>>;
          processes: Array<Record<string, unknown>>;
        };
        return body.gpus.length > 0 ? body : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: "the agent's GPU report in /v1/metrics" },
    );
    // The fake node's nvidia-smi figures (test/model-servers/fake-tinybox-node.ts), unchanged.
    expect(metrics.gpus).toEqual([
      {
        index: 0,
        name: "NVIDIA RTX A6000",
        util_gpu_pct: 87,
        util_mem_pct: null,
        vram_used_mb: 30_100,
        vram_total_mb: 49_140,
        power_w: 251.5,
        temp_c: 71,
        backend: "tinybox",
      },
      {
        index: 1,
        name: "NVIDIA RTX A6000",
        util_gpu_pct: 3,
        util_mem_pct: null,
        vram_used_mb: 500,
        vram_total_mb: 49_140,
        power_w: 22,
        temp_c: 35,
        backend: "tinybox",
      },
    ]);
    expect(metrics.processes).toContainEqual(
      expect.objectContaining({ name: "python", gpu_mem_mb: 29_000, cpu_pct: 99 }),
    );
  });

  it("at the root, voxgate's own REST binding and Prometheus metrics stay on their other paths", {
    timeout: 60_000,
  }, async () => {
    const auth = { authorization: `Bearer ${gateway.clientToken}` };
    const ping = await fetch(`${gateway.url}/ping`);
    expect(await ping.json()).toMatchObject({ ok: true });
    const speech = await fetch(`${gateway.url}/v1/speech:synthesize`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ text: "Hello.", engine: "tortoise", voice: "tom" }),
    });
    expect(speech.status).toBe(200);
    expect(speech.headers.get("content-type")).toMatch(/^audio\/wav/);
    const tts = await (
      await cloudPost("/v1/tts", chunk("Hello.", "tts_1700000002_00000000", 0))
    ).json();
    expect(tts).toMatchObject({ ok: true, content_type: "audio/wav" });
    const prometheus = await fetch(`${gateway.url}/metrics`, { headers: auth });
    expect(prometheus.status).toBe(200);
    expect(await prometheus.text()).toMatch(/^# HELP /m);
  });

  it("POST /v1/audio/age and /v1/audio/gender answer from the node's classifiers", {
    timeout: 60_000,
  }, async () => {
    const speech = await fetch(`${gateway.url}/v1/speech:synthesize`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ text: "A voice sample.", engine: "tortoise", voice: "tom" }),
    });
    const audio_b64 = Buffer.from(await speech.arrayBuffer()).toString("base64");
    const before = node.requests.length;
    node.knobs.ageYears = 61.5;
    expect(await (await cloudPost("/v1/audio/age", { audio_b64 })).json()).toEqual(
      expect.objectContaining({ ok: true, age_years: 61.5 }),
    );
    for (const gender of ["female", "male"] as const) {
      node.knobs.gender = gender;
      expect(await (await cloudPost("/v1/audio/gender", { audio_b64 })).json()).toEqual(
        expect.objectContaining({ ok: true, gender }),
      );
    }
    // The node got the clip's bytes from the agent, not a URL to download.
    const age = node.requests.slice(before).find((r) => r.path === "/v1/audio/age")?.body as
      | { audio_b64?: string; url?: string }
      | undefined;
    expect(
      Buffer.from(age?.audio_b64 ?? "", "base64")
        .subarray(0, 4)
        .toString(),
    ).toBe("RIFF");
    expect(age?.url).toBeUndefined();
  });
});
