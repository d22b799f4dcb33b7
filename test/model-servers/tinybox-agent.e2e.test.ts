/**
 * End to end with real processes: a gateway, an agent started with `--engine tinybox-http` in
 * front of a fake StoryForge Tinybox node (STORYFORGE.md §3), and an agent with a fake
 * `nvidia-smi` on its PATH. Covers what the issue asked of the node adapter: tortoise synthesis
 * with StoryForge's params, a cloned xtts voice whose reference clip the node downloads from a
 * one-time loopback URL the agent serves (never object storage), the classifiers and analysis
 * routed to the node, its LLM through the `openai` SDK, a caller's cancel reaching the node
 * (`/v1/jobs/abort`), and GPU figures from `/v1/metrics` and from `nvidia-smi` in the admin API.
 */
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeWavHeader } from "../../services/audio/wav.js";
import { type VoxgateProcess, waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";
import { clipKey, type FakeTinyboxNode, renderTone, startFakeTinyboxNode } from "./index.js";

const NODE_TOKEN = "tbcn-node-token-0123456789";

// A fake nvidia-smi: the two queries the agent makes, answered as the real tool does (CSV).
const FAKE_NVIDIA_SMI = `#!/bin/sh
case "$1" in
  --query-gpu=*) echo "0, NVIDIA GeForce RTX 4090, 42, 8123, 24564, 310.25, 66" ;;
  --query-compute-apps=*) echo "777, python3, 8000" ;;
  *) exit 2 ;;
esac
`;

interface AdminGpu {
  index?: number;
  name: string;
  utilizationPercent?: number;
  memoryUsedMib?: number;
  memoryTotalMib?: number;
  powerWatts?: number;
  temperatureC?: number;
}

describe("agent --engine tinybox-http in front of a Tinybox node", () => {
  let node: FakeTinyboxNode;
  let gateway: GatewayProcess;
  const agents: VoxgateProcess[] = [];
  let dir = "";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "voxgate-tinybox-e2e-"));
    const bin = join(dir, "bin");
    await rm(bin, { recursive: true, force: true });
    await import("node:fs/promises").then((fs) => fs.mkdir(bin));
    await writeFile(join(bin, "nvidia-smi"), FAKE_NVIDIA_SMI);
    await chmod(join(bin, "nvidia-smi"), 0o755);
    node = await startFakeTinyboxNode({ token: NODE_TOKEN });
    gateway = await startGatewayProcess({
      readyTimeoutMs: 60_000,
      env: {
        VOXGATE_DATA_DIR: join(dir, "gateway"),
        VOXGATE_AGENT_KEEPALIVE_MS: "10000",
        VOXGATE_AGENT_KEEPALIVE_TIMEOUT_MS: "120000",
        VOXGATE_HEARTBEAT_MISS_LIMIT: "100",
      },
    });
    const tinybox = startAgentProcess(gateway, "tinybox", {
      VOXGATE_AGENT_ENGINE: "tinybox-http",
      VOXGATE_AGENT_ENGINE_URL: node.url,
      VOXGATE_AGENT_ENGINE_API_KEY: NODE_TOKEN,
      VOXGATE_AGENT_GPU_POLL_MS: "200",
      VOXGATE_AGENT_PROMPT_CACHE_DIR: join(dir, "cache-tinybox"),
      VOXGATE_GATEWAY_KEEPALIVE_TIMEOUT_MS: "120000",
    });
    const smi = startAgentProcess(gateway, "smi-box", {
      VOXGATE_AGENT_ENGINE: "echo",
      VOXGATE_AGENT_GPU_POLL_MS: "200",
      PATH: `${bin}:${process.env.PATH ?? ""}`,
      VOXGATE_AGENT_PROMPT_CACHE_DIR: join(dir, "cache-smi"),
    });
    agents.push(tinybox.proc, smi.proc);
    await Promise.all([tinybox.connected, smi.connected]);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop("SIGTERM")));
    await gateway?.proc.stop("SIGTERM");
    await node?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (path: string, body: unknown, signal?: AbortSignal) =>
    fetch(`${gateway.url}${path}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });

  it("speaks tortoise with StoryForge's params passed on", async () => {
    const response = await post("/v1/speech:synthesize", {
      text: "The fox ran.",
      engine: "tortoise",
      voice: "emma",
      encoding: "AUDIO_ENCODING_PCM",
      params: { delivery: "calm", gpu: "1" },
    });
    const audio = Buffer.from(await response.arrayBuffer());
    expect(response.status, audio.toString("utf8", 0, 200)).toBe(200);
    expect(audio.equals(Buffer.from(node.expectedPcm("tortoise", "The fox ran.", "emma")))).toBe(
      true,
    );
    const sent = node.requests.find((r) => r.path === "/v1/tts")?.body as Record<string, unknown>;
    expect(sent).toMatchObject({
      engine: "tortoise",
      voice: "emma",
      text: "The fox ran.",
      delivery: "calm",
      gpu: 1,
    });
    expect(String(sent.job_id)).toMatch(/^vx-/);
  });

  it("clones an xtts voice; the node downloads the clip once from the agent's loopback URL", async () => {
    const reference = Buffer.concat([
      encodeWavHeader({ sampleRateHz: 24_000, channels: 1, dataBytes: 48_000 }),
      renderTone(200, 24_000, 24_000),
    ]);
    const created = await post("/v1/voices", {
      name: "xtts narrator",
      engine: "xtts",
      reference_audio: reference.toString("base64"),
    });
    expect(created.status, await created.clone().text()).toBe(200);
    const { voice } = (await created.json()) as { voice: { id: string } };
    const before = node.downloads.length;
    const spoken = await post("/v1/speech:synthesize", {
      text: "Hello in a cloned voice.",
      voice: voice.id,
      encoding: "AUDIO_ENCODING_PCM",
    });
    const audio = Buffer.from(await spoken.arrayBuffer());
    expect(spoken.status, audio.toString("utf8", 0, 200)).toBe(200);
    const download = node.downloads[before];
    expect(download?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/f\/[0-9a-f]{48}$/);
    expect(download?.bytes.equals(reference)).toBe(true);
    expect(
      audio.equals(
        Buffer.from(node.expectedPcm("xtts", "Hello in a cloned voice.", clipKey(reference))),
      ),
    ).toBe(true);
    // One time only: the URL is dead once fetched.
    expect((await fetch(download?.url ?? "")).status).toBe(404);
  }, 120_000);

  it("routes age, gender and analysis to the node", async () => {
    const pcm = renderTone(220, 24_000, 24_000);
    const wav = Buffer.concat([
      encodeWavHeader({ sampleRateHz: 24_000, channels: 1, dataBytes: pcm.byteLength }),
      pcm,
    ]);
    const response = await fetch(`${gateway.url}/v1/audio:analyze`, {
      method: "POST",
      headers: { authorization: `Bearer ${gateway.clientToken}`, "content-type": "audio/wav" },
      body: wav,
    });
    const text = await response.text();
    expect(response.status, text).toBe(200);
    const { analysis } = JSON.parse(text) as { analysis: Record<string, unknown> };
    expect(analysis.ageYears).toBe(37.5);
    expect(analysis.gender).toBe("VOICE_GENDER_MALE"); // the node's classifier, not the 220 Hz pitch
    expect(analysis.loudnessLufs).toBe(-20.5);
    expect(analysis.features).toMatchObject({ pitch_bucket: "low", f0_hz_median: 118.5 });
    const age = node.requests.find((r) => r.path === "/v1/audio/age")?.body as {
      audio_b64: string;
    };
    expect(Buffer.from(age.audio_b64, "base64").equals(wav)).toBe(true);
    const analyzed = node.requests.find((r) => r.path === "/v1/audio/analyze")?.body as {
      url: string;
    };
    expect(analyzed.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    expect(node.downloads.find((d) => d.url === analyzed.url)?.bytes.equals(wav)).toBe(true);
  });

  it("runs the node's LLM through /v1/chat/completions, streamed", async () => {
    const sdk = new OpenAI({
      baseURL: `${gateway.url}/v1`,
      apiKey: gateway.clientToken,
      maxRetries: 0,
    });
    const stream = await sdk.chat.completions.create({
      model: "google/gemma-2-9b-it",
      messages: [{ role: "user", content: "name a fox" }],
      temperature: 0.2,
      max_tokens: 220,
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe("Node says: name a fox");
    expect(node.requests.find((r) => r.path === "/v1/llm")?.body).toMatchObject({
      model: "google/gemma-2-9b-it",
      temperature: 0.2,
      max_tokens: 220,
    });
  });

  it("a caller who leaves aborts the node's job", async () => {
    node.knobs.ttsDelayMs = 30_000;
    try {
      const controller = new AbortController();
      const before = node.requests.length;
      const pending = post(
        "/v1/speech:synthesize",
        {
          text: "A very long tortoise render.",
          engine: "tortoise",
          voice: "tom",
          encoding: "AUDIO_ENCODING_PCM",
        },
        controller.signal,
      ).catch(() => undefined);
      const tts = await waitFor(
        async () => node.requests.slice(before).find((r) => r.path === "/v1/tts"),
        { timeoutMs: 30_000, intervalMs: 50, what: "the node's /v1/tts request" },
      );
      controller.abort();
      await pending;
      const abort = await waitFor(
        async () => node.requests.slice(before).find((r) => r.path === "/v1/jobs/abort"),
        { timeoutMs: 30_000, intervalMs: 50, what: "the node's /v1/jobs/abort request" },
      );
      expect(abort.body).toEqual({ job_id: (tts.body as { job_id: string }).job_id });
      await tts.closed;
      expect(tts.closedEarly).toBe(true);
    } finally {
      node.knobs.ttsDelayMs = 0;
    }
  });

  it("shows each host's GPUs in the admin API, from /v1/metrics and from nvidia-smi", async () => {
    const gpusOf = async (id: string) =>
      waitFor(
        async () => {
          const response = await fetch(`${gateway.url}/v1/backends/${id}`, {
            headers: { authorization: `Bearer ${gateway.clientToken}` },
          });
          const body = (await response.json()) as {
            backend?: {
              load?: {
                gpus?: AdminGpu[];
                gpuProcesses?: Array<{ pid: number; name: string; gpuMemoryMib?: number }>;
              };
            };
          };
          const load = body.backend?.load;
          return load?.gpus?.length ? load : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: `GPU figures of ${id}` },
      );
    const tinybox = await gpusOf("tinybox");
    expect(tinybox.gpus).toHaveLength(2);
    expect(tinybox.gpus?.[0]).toMatchObject({
      name: "NVIDIA RTX A6000",
      utilizationPercent: 87,
      memoryUsedMib: 30_100,
      memoryTotalMib: 49_140,
      powerWatts: 251.5,
      temperatureC: 71,
    });
    expect(tinybox.gpuProcesses?.[0]).toMatchObject({
      pid: 4242,
      name: "python",
      gpuMemoryMib: 29_000,
    });
    const smi = await gpusOf("smi-box");
    expect(smi.gpus?.[0]).toMatchObject({
      name: "NVIDIA GeForce RTX 4090",
      utilizationPercent: 42,
      memoryUsedMib: 8123,
      memoryTotalMib: 24_564,
      powerWatts: 310.25,
      temperatureC: 66,
    });
    expect(smi.gpuProcesses?.[0]).toMatchObject({ pid: 777, name: "python3", gpuMemoryMib: 8000 });
  });
});
