/**
 * MP3 streaming and the OpenAI-compatible speech API against a recording fake engine: a real
 * gateway and a real Agent on 127.0.0.1, so the tests can see what reached the engine and when
 * audio left relative to the engine's progress.
 */
import { once } from "node:events";
import * as http2 from "node:http2";
import OpenAI, { APIError } from "openai";
import { Stream } from "openai/streaming";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { Agent, agentLinkOptionsFromSettings } from "../../services/agent/agent.js";
import { agentSettings } from "../../services/agent/agent-settings.js";
import { readMp3Frames } from "../../services/audio/mp3-encoder.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { settingDefaults } from "../../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../../services/engine-host/engine-host-handler.js";
import { createEngineHost, describeEngines } from "../../services/engine-host/index.js";
import { createGateway, type Gateway } from "../../services/gateway/index.js";
import {
  createInProcessFakeEngine,
  type InProcessFakeEngine,
  type InProcessFakeEngineOptions,
} from "../helpers/in-process-fake-engine.js";

const CLIENT_TOKEN = "vxg_openai-streaming-client";
const AGENT_TOKEN = "vxg_openai-streaming-agent";
const AGENT_ID = "fake-box";
const silent = pino({ level: "silent" });

/** Four sentences of three 0.1 s chunks each at 22050 Hz: 1.2 s of audio over about 0.7 s. */
const TEXT = "One fish. Two fish. Red fish. Blue fish.";
const ENGINE: InProcessFakeEngineOptions = {
  sampleRateHz: 22050,
  samplesPerChunk: 2205,
  chunksPerSentence: 3,
  chunkDelayMs: 60,
};

/**
 * A deadline that lands mid-stream: the first chunk comes after ~60 ms, the whole text takes
 * 40 × 3 × 60 ms = 7.2 s. Wide on both sides, so a loaded machine still sees bytes before the
 * deadline (it was 400 ms on a 1.8 s text, and a loaded CI run got no byte by then).
 */
const MID_STREAM_DEADLINE_MS = 3_000;
const LONG_TEXT = Array.from({ length: 40 }, (_, i) => `Sentence ${i}.`).join(" ");

const openGateways: Gateway[] = [];
const openAgents: { agent: Agent; run: Promise<void> }[] = [];
const openClients: VoxgateClient[] = [];

afterEach(async () => {
  for (const client of openClients.splice(0)) client.close();
  await Promise.all(
    openAgents.splice(0).map(async ({ agent, run }) => {
      await agent.shutdown();
      await run;
    }),
  );
  await Promise.all(openGateways.splice(0).map((gateway) => gateway.close(500)));
});

async function startStack(defaultTimeoutMs = 30_000) {
  const gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [
      { name: "app", sha256: hashToken(CLIENT_TOKEN), scopes: ["tts", "voices"] },
      { name: "gpu", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] },
    ],
    limits: {
      maxTextChars: 5000,
      maxRequestBytes: 64 * 1024,
      maxClipBytes: 16 * 1024 * 1024,
      defaultTimeoutMs,
      maxTimeoutMs: 60_000,
    },
    log: silent,
  });
  openGateways.push(gateway);
  const { publicUrl, agentPort } = await gateway.listen();
  const engine: InProcessFakeEngine = createInProcessFakeEngine(ENGINE);
  const agent = new Agent({
    ...agentLinkOptionsFromSettings(settingDefaults(agentSettings)),
    gatewayAddress: `127.0.0.1:${agentPort}`,
    token: AGENT_TOKEN,
    agentId: AGENT_ID,
    version: "test",
    host: createEngineHost({
      ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
      engines: [engine],
      slots: 2,
    }),
    capabilities: describeEngines([engine], 2),
    backoff: { initialDelayMs: 50, maxDelayMs: 200 },
    drainTimeoutMs: 2_000,
    log: silent,
  });
  openAgents.push({ agent, run: agent.run() });
  const deadline = performance.now() + 10_000;
  while (gateway.registry.get(AGENT_ID)?.state !== BackendState.READY) {
    if (performance.now() > deadline) throw new Error("the agent did not register");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const sdk = new OpenAI({ baseURL: `${publicUrl}/v1`, apiKey: CLIENT_TOKEN, maxRetries: 0 });
  return { gateway, publicUrl, engine, sdk };
}

const join = (parts: readonly Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

describe("MP3 streaming", () => {
  it("streams MP3 over Connect in several chunks, the first before the engine is done", async () => {
    const { publicUrl, engine } = await startStack();
    const client = createVoxgateClient({
      baseUrl: publicUrl,
      token: CLIENT_TOKEN,
      protocol: "connect",
      httpVersion: "1.1",
    });
    openClients.push(client);
    const chunks: Uint8Array[] = [];
    let contentType = "";
    let engineChunksAtFirst: number | undefined;
    let firstAt = 0;
    for await (const chunk of client.tts.streamSynthesize({
      text: TEXT,
      encoding: AudioEncoding.MP3,
    })) {
      if (chunks.length === 0) {
        firstAt = performance.now();
        contentType = chunk.contentType;
        engineChunksAtFirst = engine.calls[0]?.chunks.length;
      }
      chunks.push(chunk.data);
    }
    expect(contentType).toBe("audio/mpeg");
    expect(chunks.length).toBeGreaterThanOrEqual(4);
    expect(engineChunksAtFirst).toBeLessThan(engine.chunkCount(TEXT));
    expect(firstAt).toBeLessThan(engine.calls[0]?.finishedAt ?? 0);
    const info = readMp3Frames(join(chunks));
    expect(info).toMatchObject({ sampleRateHz: 22050, channels: 1, bitrateKbps: 64 });
    expect(info.durationMs).toBeGreaterThanOrEqual(1200);
    expect(info.durationMs).toBeLessThan(1200 + 150);
  });

  it("returns a whole MP3 clip over Connect", async () => {
    const { publicUrl } = await startStack();
    const client = createVoxgateClient({
      baseUrl: publicUrl,
      token: CLIENT_TOKEN,
      protocol: "grpc",
      httpVersion: "2",
    });
    openClients.push(client);
    const clip = await client.tts.synthesize({ text: TEXT, encoding: AudioEncoding.MP3 });
    expect(clip.contentType).toBe("audio/mpeg");
    expect(readMp3Frames(clip.data).durationMs).toBeGreaterThanOrEqual(1200);
  });
});

describe("POST /v1/audio/speech against the fake engine", () => {
  it("maps the OpenAI request onto the engine request: default voice for alloy, speed, instructions", async () => {
    const { engine, sdk } = await startStack();
    const response = await sdk.audio.speech
      .create({
        model: "fake-tts",
        voice: "alloy",
        input: TEXT,
        speed: 1.5,
        instructions: "Whisper.",
        response_format: "mp3",
      })
      .asResponse();
    let firstAt = 0;
    const chunks: Uint8Array[] = [];
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      firstAt ||= performance.now();
      chunks.push(chunk);
    }
    expect(response.headers.get("x-voxgate-backend")).toBe(AGENT_ID);
    expect(response.headers.get("x-voxgate-attempts")).toBe("1");
    expect(firstAt).toBeLessThan(engine.calls[0]?.finishedAt ?? 0);
    expect(engine.calls).toHaveLength(1);
    expect(engine.calls[0]?.request).toMatchObject({
      text: TEXT,
      voiceId: "",
      speed: 1.5,
      instructions: "Whisper.",
    });
    expect(readMp3Frames(join(chunks)).durationMs).toBeGreaterThanOrEqual(1200);

    await sdk.audio.speech.create({ model: "tts-1", voice: "fake-voice", input: "Hi." });
    expect(engine.calls[1]?.request.voiceId).toBe("fake-voice");
  });

  it("cuts a raw audio stream that fails after its first bytes, instead of ending it cleanly", async () => {
    const { engine, sdk } = await startStack(MID_STREAM_DEADLINE_MS);
    const long = LONG_TEXT;
    const response = await sdk.audio.speech
      .create({ model: "tts-1", voice: "alloy", input: long, response_format: "wav" })
      .asResponse();
    expect(response.status).toBe(200);
    let received = 0;
    const error = await (async () => {
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          received += chunk.byteLength;
        }
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(received).toBeGreaterThan(44);
    expect(error).toBeInstanceOf(Error);
    expect(engine.calls[0]?.finishedAt).toBeUndefined();
  });

  it("ends an SSE stream that fails after its first event with an error event the SDK throws", async () => {
    const { sdk } = await startStack();
    const long = LONG_TEXT;
    const response = await sdk.audio.speech
      .create(
        { model: "tts-1", voice: "alloy", input: long, stream_format: "sse" },
        { headers: { "x-voxgate-timeout-ms": String(MID_STREAM_DEADLINE_MS) } },
      )
      .asResponse();
    let deltas = 0;
    let done = false;
    const error = await (async () => {
      try {
        for await (const event of Stream.fromSSEResponse<{ type: string }>(
          response,
          new AbortController(),
        )) {
          if (event.type === "speech.audio.delta") deltas++;
          if (event.type === "speech.audio.done") done = true;
        }
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(deltas).toBeGreaterThan(0);
    expect(done).toBe(false);
    expect(error).toBeInstanceOf(APIError);
    const apiError = error as APIError;
    // The deadline hits the call or, first, the backend's own stream (then the registry reports
    // a backend that failed after audio was sent, ABORTED); either way a server error.
    expect(["deadline_exceeded", "aborted"]).toContain(apiError.code);
    expect(apiError.message).toMatch(/timed out|deadline/);
    expect(apiError.type).toBe("server_error");
  });

  it("serves HTTP/2 (h2c) callers on the same port", async () => {
    const { publicUrl } = await startStack();
    const session = http2.connect(publicUrl);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/v1/audio/speech",
        authorization: `Bearer ${CLIENT_TOKEN}`,
        "content-type": "application/json",
      });
      stream.end(JSON.stringify({ model: "tts-1", voice: "alloy", input: TEXT }));
      const [headers] = (await once(stream, "response")) as [http2.IncomingHttpHeaders];
      const chunks: Uint8Array[] = [];
      for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
      expect(headers[":status"]).toBe(200);
      expect(headers["content-type"]).toBe("audio/mpeg");
      expect(headers["x-voxgate-backend"]).toBe(AGENT_ID);
      expect(readMp3Frames(join(chunks)).durationMs).toBeGreaterThanOrEqual(1200);
    } finally {
      session.close();
    }
  });

  it("refuses a malformed x-voxgate-timeout-ms with 400 before calling the engine", async () => {
    const { engine, sdk } = await startStack();
    const error = await sdk.audio.speech
      .create(
        { model: "tts-1", voice: "alloy", input: TEXT },
        { headers: { "x-voxgate-timeout-ms": "soon" } },
      )
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBe(400);
    expect((error as APIError).message).toContain("x-voxgate-timeout-ms must be a positive");
    expect(engine.calls).toHaveLength(0);
  });

  it("answers 503 with an OpenAI error when no backend is connected", async () => {
    const { gateway, sdk } = await startStack();
    for (const { agent, run } of openAgents.splice(0)) {
      await agent.shutdown();
      await run;
    }
    const deadline = performance.now() + 5_000;
    while (gateway.registry.get(AGENT_ID) !== undefined && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(gateway.registry.get(AGENT_ID)).toBeUndefined();
    const error = await sdk.audio.speech
      .create({ model: "tts-1", voice: "echo", input: TEXT })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBe(503);
    expect((error as APIError).code).toBe("unavailable");
    expect((error as APIError).message).toContain("no backend is connected");
  });
});
