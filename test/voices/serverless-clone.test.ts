/**
 * A cloned voice on a serverless backend: the gateway hands the RunPod job a short-lived URL of the
 * prompt, signed by the gateway (filesystem store, served on its public port), and the worker (the
 * RunPod emulator with the real CPU engine) downloads the prompt with that URL alone, checks its
 * digest and speaks with it. The URL dies within the configured lifetime (one hour at most), and
 * the same path without a signature is refused.
 */
import { createHash } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { AnalysisKind } from "../../gen/voxgate/v1/analysis_pb.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { PutPromptRequestSchema } from "../../gen/voxgate/v1/prompt_store_pb.js";
import { encodeWavHeader } from "../../services/audio/wav.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { serverlessEntryDefaults } from "../../services/backends/index.js";
import { createEspeakEngine } from "../../services/engines/espeak/index.js";
import type { TtsEngine } from "../../services/engines/tts-engine.js";
import { createGateway, type Gateway } from "../../services/gateway/gateway.js";
import { waitFor } from "../helpers/voxgate-process.js";
import { createRunPodEmulator, type RunPodEmulator } from "../runpod-emulator/index.js";
import { createTtsWorkerHandler } from "../runpod-emulator/tts-worker.js";

const TOKEN = "vxg_serverless-clone-test-token-0000000000000000000000";
const API_KEY = "rp_serverless-clone-key";
const TTL_MS = 120_000;
const REFERENCE_TEXT =
  "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore.";
const TEST_TEXT = "Peter Piper picked a peck of pickled peppers.";

let engine: TtsEngine;
let emulator: RunPodEmulator;
let gateway: Gateway;
let client: VoxgateClient;
let publicUrl: string;
/** The gateway's log lines at info and above, parsed. */
const logLines: Record<string, unknown>[] = [];
const promptFetches: Array<{ url: string; status: number }> = [];

async function pcmOf(text: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of engine.synthesize(
    { text, voiceId: "", speed: 1, instructions: "" },
    new AbortController().signal,
  )) {
    parts.push(chunk.pcm);
  }
  return Buffer.concat(parts);
}

beforeAll(async () => {
  engine = await createEspeakEngine();
  emulator = createRunPodEmulator({
    apiKey: API_KEY,
    handler: createTtsWorkerHandler({ engine, promptFetches }),
  });
  const endpointUrl = await emulator.listen();
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [{ name: "tester", sha256: hashToken(TOKEN), scopes: ["tts", "voices", "admin"] }],
    backends: [
      {
        ...serverlessEntryDefaults(),
        id: "runpod-e",
        endpointUrl,
        apiKey: API_KEY,
        pollIntervalMinMs: 20,
        pollIntervalMaxMs: 100,
        engines: [
          {
            id: engine.info.id,
            version: "",
            model: { family: engine.info.modelFamily, size: engine.info.modelSize },
            features: ["synthesize", "clone_prompt_synthesize"],
            sampleRateHz: engine.info.format.sampleRateHz,
            voices: [],
          },
        ],
      },
    ],
    limits: {
      maxTextChars: 5000,
      maxRequestBytes: 4 * 1024 * 1024,
      maxClipBytes: 16 * 1024 * 1024,
      defaultTimeoutMs: 60_000,
      maxTimeoutMs: 120_000,
    },
    health: { probeIntervalMs: 200 },
    storage: { signedUrlTtlMs: TTL_MS },
    log: pino({ level: "info" }, { write: (line: string) => logLines.push(JSON.parse(line)) }),
  });
  ({ publicUrl } = await gateway.listen());
  // Client streams (PutPrompt) need HTTP/2.
  // The clone speaks through the RunPod emulator and a CPU engine: seconds on a quiet machine,
  // past the client's default 30 s deadline at load 30, so the calls get the test's own bound.
  client = createVoxgateClient({
    baseUrl: publicUrl,
    token: TOKEN,
    httpVersion: "2",
    timeoutMs: 100_000,
  });
  await waitFor(() => gateway.registry.get("runpod-e")?.state === BackendState.READY, {
    timeoutMs: 20_000,
    what: "serverless backend READY",
  });
}, 120_000);

afterAll(async () => {
  client?.close();
  await gateway?.close(500);
  await emulator?.close();
  await engine?.close();
});

describe("clone prompts on a serverless backend", () => {
  it("hands the worker a signed URL it downloads the prompt with, and speaks the clone", async () => {
    const speech = await pcmOf(REFERENCE_TEXT);
    const rate = engine.info.format.sampleRateHz;
    // Labelled 1.7 times faster: the same speech, higher.
    const reference = Buffer.concat([
      encodeWavHeader({
        sampleRateHz: Math.round(rate * 1.7),
        channels: 1,
        dataBytes: speech.length,
      }),
      speech,
    ]);
    const made = await engine.createClonePrompt?.(
      { referenceAudio: reference, contentType: "audio/wav", referenceText: "", language: "en-us" },
      new AbortController().signal,
    );
    const promptBytes = made?.prompt ?? new Uint8Array();
    const digest = createHash("sha256").update(promptBytes).digest("hex");
    async function* upload(): AsyncGenerator<MessageInitShape<typeof PutPromptRequestSchema>> {
      yield {
        kind: {
          case: "metadata",
          value: {
            name: "high",
            engine: engine.info.id,
            model: { family: engine.info.modelFamily, size: engine.info.modelSize },
            contentType: made?.contentType ?? "application/json",
          },
        },
      };
      yield { kind: { case: "data", value: promptBytes } };
    }
    const put = await client.prompts.putPrompt(upload());
    expect(put.prompt?.digest).toBe(digest);

    const startedAt = Date.now();
    let backend = "";
    const clip = await client.tts.synthesize(
      { text: TEST_TEXT, promptId: digest },
      { onHeader: (h) => (backend = h.get("x-voxgate-backend") ?? "") },
    );
    const finishedAt = Date.now();
    expect(backend).toBe("runpod-e");

    // The job carried a gateway-signed URL of this prompt, and the worker fetched it.
    const job = emulator.jobs().at(-1);
    const input = job?.input as { clone_prompt?: { url: string; digest: string } } | undefined;
    const sent = input?.clone_prompt;
    expect(sent?.digest).toBe(digest);
    const url = new URL(sent?.url ?? "");
    expect(`${url.origin}`).toBe(publicUrl);
    expect(url.pathname).toMatch(/^\/v1\/blobs\/prompts\//);
    expect(promptFetches).toEqual([{ url: sent?.url, status: 200 }]);
    // Logged at info as a hand-over of that prompt, never with the URL (a bearer credential).
    const handed = logLines.filter(
      (line) => line.msg === "signed clone prompt URL handed to serverless backend",
    );
    expect(handed).toMatchObject([{ backend: "runpod-e", digest }]);
    expect(JSON.stringify(logLines)).not.toContain(url.searchParams.get("signature") ?? "-");
    const expiresMs = Number(url.searchParams.get("expires")) * 1000;
    // Signed during the call for TTL_MS (whole seconds, rounded up): never longer.
    expect(expiresMs).toBeGreaterThanOrEqual(startedAt + TTL_MS);
    expect(expiresMs).toBeLessThanOrEqual(finishedAt + TTL_MS + 1000);

    // The path alone, or with a tampered signature, gets nothing.
    const bare = await fetch(`${url.origin}${url.pathname}`);
    expect(bare.status).toBeGreaterThanOrEqual(400);
    await bare.arrayBuffer();
    url.searchParams.set("signature", "0".repeat(64));
    const forged = await fetch(url);
    expect(forged.status).toBeGreaterThanOrEqual(400);
    await forged.arrayBuffer();

    // The clone sounds higher than the default voice.
    const plain = await client.tts.synthesize({ text: TEST_TEXT });
    const f0 = async (data: Uint8Array) =>
      (
        await client.voices.analyzeAudio({
          audio: { contentType: "audio/wav", data },
          kinds: [AnalysisKind.PITCH],
        })
      ).analysis?.medianF0Hz ?? 0;
    expect((await f0(clip.data)) / (await f0(plain.data))).toBeGreaterThan(1.25);
  }, 120_000);
});
