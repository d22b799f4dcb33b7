/**
 * End to end with real processes: a gateway, and an agent started with `--engine openai-http
 * --engine-url <fake>` that forwards to a fake OpenAI-compatible model server in this process.
 * A client speaks through the gateway's OpenAI route; the PCM it gets is exactly the model
 * server's, it streams through the whole chain, and a caller who leaves closes the model server's
 * request.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnVoxgate, type VoxgateProcess } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";
import { deferred, type FakeOpenAiSpeechServer, startFakeOpenAiSpeechServer } from "./index.js";

const API_KEY = "sk-e2e-model-server-key-0123456789";

describe("agent --engine openai-http against a model server", () => {
  let fake: FakeOpenAiSpeechServer;
  let gateway: GatewayProcess;
  let agent: VoxgateProcess;

  beforeAll(async () => {
    fake = await startFakeOpenAiSpeechServer({ apiKey: API_KEY });
    gateway = await startGatewayProcess({ readyTimeoutMs: 60_000 });
    const started = startAgentProcess(gateway, "gpu-box", {
      VOXGATE_AGENT_ENGINE: "openai-http",
      VOXGATE_AGENT_ENGINE_URL: fake.url,
      VOXGATE_AGENT_ENGINE_API_KEY: API_KEY,
      VOXGATE_AGENT_ENGINE_MODEL: "kokoro",
    });
    agent = started.proc;
    await started.connected;
  }, 90_000);

  afterAll(async () => {
    await agent?.stop("SIGTERM");
    await gateway?.proc.stop("SIGTERM");
    await fake?.close();
  });

  const speak = (body: Record<string, unknown>, signal?: AbortSignal) =>
    fetch(`${gateway.url}/v1/audio/speech`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });

  it("the gateway lists the model server's voices", async () => {
    const response = await fetch(`${gateway.url}/v1/audio/voices`, {
      headers: { authorization: `Bearer ${gateway.clientToken}` },
    });
    const { voices } = (await response.json()) as { voices: Array<{ id: string; engine: string }> };
    expect(voices.map((v) => v.id).sort()).toEqual(["alloy", "nova", "onyx"]);
    expect(voices.every((v) => v.engine === "openai-http")).toBe(true);
  });

  it("a client gets exactly the model server's PCM, streamed through gateway and agent", async () => {
    const gate = deferred();
    fake.knobs.pieceBytes = 2400;
    fake.knobs.gate = gate.promise;
    const text = "Hello from a GPU host behind NAT.";
    const before = fake.speechRequests().length;
    const response = await speak({
      model: "kokoro",
      voice: "nova",
      input: text,
      response_format: "pcm",
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-voxgate-backend")).toBe("gpu-box");
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    // The first audio reached the client while the model server still held the rest back.
    const sent = fake.speechRequests()[before];
    expect(first.done).toBe(false);
    expect(sent?.completed).toBe(false);
    gate.resolve();
    const chunks = [first.value as Uint8Array];
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      chunks.push(next.value);
    }
    fake.knobs.gate = undefined;
    expect(Buffer.concat(chunks).equals(Buffer.from(fake.expectedPcm(text, "nova")))).toBe(true);
    expect(sent?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent?.body).toMatchObject({ model: "kokoro", voice: "nova", input: text });
  });

  it("a caller who leaves closes the model server's request", async () => {
    const gate = deferred();
    fake.knobs.pieceBytes = 2400;
    fake.knobs.gate = gate.promise;
    const before = fake.speechRequests().length;
    const controller = new AbortController();
    const response = await speak(
      {
        model: "tts-1",
        voice: "alloy",
        input: "This call is abandoned halfway.",
        response_format: "pcm",
      },
      controller.signal,
    );
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    const sent = fake.speechRequests()[before];
    await sent?.closed;
    expect(sent?.closedEarly).toBe(true);
    fake.knobs.gate = undefined;
    gate.resolve();
  });

  it("never logs the model server's API key", () => {
    const logged = agent.logs.map((line) => JSON.stringify(line)).join("\n") + agent.stderr();
    expect(logged.length).toBeGreaterThan(0);
    expect(logged).not.toContain(API_KEY);
  });

  it("an agent without --engine-url refuses to start, naming the setting", async () => {
    const refused = spawnVoxgate(
      ["agent", "--gateway", `127.0.0.1:${gateway.agentPort}`, "--engine", "qwen3-http"],
      { VOXGATE_AGENT_TOKEN: gateway.agentToken },
    );
    expect(await refused.exited()).toBe(1);
    expect(refused.stderr()).toContain("VOXGATE_AGENT_ENGINE_URL");
  });
});
