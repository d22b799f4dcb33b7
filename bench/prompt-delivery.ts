/**
 * Prompt delivery benchmark: how long a call that needs a clone prompt waits for it, when the
 * agent's cache lacks it (the gateway streams it over the call's own stream: `prompt_wanted`,
 * then `prompt_chunk`s of at most 256 KiB, digest checked, written to the on-disk cache) and when
 * the cache has it (file read plus sha256 check).
 *
 * Two processes on 127.0.0.1: this one is the gateway side (the real agent port and registry, an
 * in-memory PromptSource standing in for the prompt store), and a child process runs the real
 * Agent with a real PromptCache under a temp dir and a cloning engine that answers with one tiny
 * audio chunk as soon as it has the prompt bytes. So the time measured, from the call's start to
 * its first audio message, is the delivery (plus one call's fixed cost, shown as "no prompt").
 *
 *   node --import tsx bench/prompt-delivery.ts [--reps N] [--quick]
 *
 * Prints a table and one JSON line (ms; MB = 10^6 bytes).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { BackendState } from "../gen/voxgate/v1/backend_admin_pb.js";
import { Agent, agentLinkOptionsFromSettings } from "../services/agent/agent.js";
import { agentSettings } from "../services/agent/agent-settings.js";
import { createPromptCache } from "../services/agent/prompt-cache.js";
import { createAgentPortServer } from "../services/agent-link/index.js";
import type { PromptSource } from "../services/agent-link/prompt-source.js";
import { hashToken } from "../services/auth/token-codec.js";
import { createTokenStore } from "../services/auth/token-store.js";
import { settingDefaults } from "../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../services/engine-host/engine-host-handler.js";
import { createEngineHost, describeEngines } from "../services/engine-host/index.js";
import type { EngineAudioChunk, TtsEngine } from "../services/engines/tts-engine.js";
import { gatewaySettings } from "../services/gateway/gateway-settings.js";
import { routingOptionsFromSettings } from "../services/registry/backend-registry.js";
import { createBackendRegistry } from "../services/registry/index.js";

/** Routing options a started gateway has by default (its settings' defaults). */
const routing = routingOptionsFromSettings(settingDefaults(gatewaySettings));

const { values } = parseArgs({
  options: {
    reps: { type: "string" },
    quick: { type: "boolean" },
    role: { type: "string" },
    port: { type: "string" },
    "cache-dir": { type: "string" },
  },
});

const TOKEN = "vxg_bench-prompt-delivery-agent";
const AGENT_ID = "bench-agent";
const MODEL = { family: "bench-clone", size: "1b" };
const log = pino({ level: "warn" });

/** A cloning engine that answers with 320 bytes of silence once it holds the prompt. */
const engine: TtsEngine = {
  info: {
    id: "bench-clone",
    version: "bench",
    modelFamily: MODEL.family,
    modelSize: MODEL.size,
    format: { sampleRateHz: 16_000, channels: 1 },
    voices: [{ id: "plain", name: "Plain", languages: ["en"], gender: "" }],
    supportsSpeed: false,
    supportsCloning: true,
  },
  async *synthesize(): AsyncGenerator<EngineAudioChunk> {
    yield { pcm: new Uint8Array(320) };
  },
  async close() {},
};

/** The child: a real Agent with an on-disk prompt cache. */
async function runAgent(): Promise<void> {
  const cacheDir = values["cache-dir"] ?? "";
  const promptCache = createPromptCache({
    dir: cacheDir,
    maxBytes: settingDefaults(agentSettings).promptCacheBytes,
    log,
  });
  const agent = new Agent({
    ...agentLinkOptionsFromSettings(settingDefaults(agentSettings)),
    gatewayAddress: `127.0.0.1:${values.port}`,
    token: TOKEN,
    agentId: AGENT_ID,
    version: "bench",
    host: createEngineHost({
      ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
      engines: [engine],
      slots: 2,
    }),
    capabilities: describeEngines([engine], 2),
    promptCache,
    log,
  });
  process.on("SIGTERM", () => void agent.shutdown());
  await agent.run();
}

interface Prompt {
  digest: string;
  bytes: Uint8Array;
}

function makePrompt(sizeBytes: number): Prompt {
  const bytes = new Uint8Array(randomBytes(sizeBytes));
  return { digest: createHash("sha256").update(bytes).digest("hex"), bytes };
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/** The parent: gateway side, drives the calls and prints the figures. */
async function runGateway(): Promise<void> {
  const reps = Number(values.reps ?? (values.quick ? 1 : 3));
  const sizes = [5_000_000, 50_000_000];
  const prompts = new Map<string, Uint8Array>();
  const source: PromptSource = {
    async open(digest) {
      const bytes = prompts.get(digest);
      if (!bytes) throw new Error(`no prompt ${digest}`);
      return {
        sizeBytes: bytes.byteLength,
        chunks: (async function* () {
          // Pieces of 1 MiB, as a store's read stream would give them.
          for (let offset = 0; offset < bytes.byteLength; offset += 1024 * 1024) {
            yield bytes.subarray(offset, offset + 1024 * 1024);
          }
        })(),
      };
    },
  };
  const registry = createBackendRegistry({ log, ...routing, maxAttempts: 1 });
  const server = createAgentPortServer({
    host: "127.0.0.1",
    port: 0,
    tokens: createTokenStore([{ name: "bench", sha256: hashToken(TOKEN), scopes: ["agent"] }]),
    registry,
    log,
    promptSource: source,
  });
  const port = await server.listen();
  const cacheDir = await mkdtemp(join(tmpdir(), "voxgate-bench-prompts-"));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      fileURLToPath(import.meta.url),
      "--role",
      "agent",
      "--port",
      String(port),
      "--cache-dir",
      cacheDir,
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  try {
    const deadline = performance.now() + 30_000;
    while (registry.get(AGENT_ID)?.state !== BackendState.READY) {
      if (performance.now() > deadline) throw new Error("the agent did not connect");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const client = registry.get(AGENT_ID)?.client;
    if (!client) throw new Error("no agent client");

    /** One call; resolves with the time to its first audio message, in ms. */
    const call = async (prompt: Prompt | undefined): Promise<number> => {
      const started = performance.now();
      let firstAudioMs = Number.NaN;
      const request = prompt
        ? {
            text: "bench",
            voice: {
              kind: {
                case: "clonePrompt" as const,
                value: {
                  digest: prompt.digest,
                  sizeBytes: BigInt(prompt.bytes.byteLength),
                  model: MODEL,
                },
              },
            },
          }
        : { text: "bench" };
      for await (const piece of client.synthesize(request, { timeoutMs: 120_000 })) {
        if (piece.kind.case === "audio" && Number.isNaN(firstAudioMs)) {
          firstAudioMs = performance.now() - started;
        }
      }
      return firstAudioMs;
    };

    for (let i = 0; i < 5; i++) await call(undefined); // warm up the link and the engine host
    const baseline: number[] = [];
    for (let i = 0; i < 20; i++) baseline.push(await call(undefined));

    const rows: Array<{ sizeBytes: number; miss: number[]; hit: number[] }> = [];
    for (const sizeBytes of sizes) {
      const row = { sizeBytes, miss: [] as number[], hit: [] as number[] };
      for (let rep = 0; rep < reps; rep++) {
        // A new prompt per rep, so every first call is a real miss.
        const prompt = makePrompt(sizeBytes);
        prompts.set(prompt.digest, prompt.bytes);
        row.miss.push(await call(prompt));
        // The agent writes its cache file after handing the bytes on; let that finish, so the
        // next call is a hit on disk (read plus sha256), not one served from the write in flight.
        await new Promise((resolve) => setTimeout(resolve, 2000));
        row.hit.push(await call(prompt));
        prompts.delete(prompt.digest);
      }
      rows.push(row);
    }

    const baseMs = median(baseline);
    console.log(
      `prompt delivery over the agent link (2 processes, 127.0.0.1, ${reps} rep(s), median [min-max])`,
    );
    console.log(`no prompt (fixed cost of one call): ${round(baseMs)} ms`);
    console.log("| prompt | miss: first audio | hit: first audio | miss throughput |");
    console.log("|---|---|---|---|");
    const figures: Record<string, number> = { noPromptMs: round(baseMs) };
    for (const row of rows) {
      const mb = row.sizeBytes / 1e6;
      const miss = median(row.miss);
      const hit = median(row.hit);
      const range = (xs: number[]) => `[${round(Math.min(...xs))}-${round(Math.max(...xs))}]`;
      console.log(
        `| ${mb} MB | ${round(miss)} ms ${range(row.miss)} | ${round(hit)} ms ${range(row.hit)} | ${round(mb / ((miss - baseMs) / 1000))} MB/s |`,
      );
      figures[`miss${mb}MBMs`] = round(miss);
      figures[`hit${mb}MBMs`] = round(hit);
      figures[`miss${mb}MBMBps`] = round(mb / ((miss - baseMs) / 1000));
    }
    console.log(
      JSON.stringify({ bench: "prompt-delivery", reps, node: process.version, ...figures }),
    );
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    await server.close(500);
    await rm(cacheDir, { recursive: true, force: true });
  }
}

// Last, so every declaration above is initialized before either role runs.
if (values.role === "agent") {
  await runAgent();
} else {
  await runGateway();
}
