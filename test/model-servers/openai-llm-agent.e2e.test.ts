/**
 * End to end with real processes: a gateway and two agents started with `--engine openai-llm`,
 * each in front of a fake OpenAI-compatible LLM server (the API of vLLM, llama.cpp and Ollama).
 * The `openai` SDK talks to the gateway's `/v1/chat/completions`; the typed LlmService answers the
 * same. The issue asked for LLM streaming through agents, routing by model name, failover before
 * the first token and a client cancel reaching the model server: each has a test here. Audio
 * analysis asking for age with no classifier connected is refused (FAILED_PRECONDITION).
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeWavHeader } from "../../services/audio/wav.js";
import type { VoxgateProcess } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";
import {
  deferred,
  expectedReply,
  type FakeOpenAiLlmServer,
  renderTone,
  startFakeOpenAiLlmServer,
} from "./index.js";

const KEY = "sk-e2e-llm-server-key-0123456789";
const GEMMA = "google/gemma-2-9b-it";

describe("agents --engine openai-llm in front of OpenAI-compatible LLM servers", () => {
  let first: FakeOpenAiLlmServer;
  let second: FakeOpenAiLlmServer;
  let gateway: GatewayProcess;
  const agents: VoxgateProcess[] = [];
  let sdk: OpenAI;

  beforeAll(async () => {
    first = await startFakeOpenAiLlmServer({ models: [GEMMA], apiKey: KEY });
    second = await startFakeOpenAiLlmServer({ models: [GEMMA, "llama-3-8b"] });
    gateway = await startGatewayProcess({ readyTimeoutMs: 60_000 });
    const a = startAgentProcess(gateway, "llm-a", {
      VOXGATE_AGENT_ENGINE: "openai-llm",
      VOXGATE_AGENT_ENGINE_URL: `${first.url}/v1`,
      VOXGATE_AGENT_ENGINE_API_KEY: KEY,
      VOXGATE_AGENT_PRIORITY: "0",
    });
    const b = startAgentProcess(gateway, "llm-b", {
      VOXGATE_AGENT_ENGINE: "openai-llm",
      VOXGATE_AGENT_ENGINE_URL: second.url,
      VOXGATE_AGENT_PRIORITY: "1",
    });
    agents.push(a.proc, b.proc);
    await Promise.all([a.connected, b.connected]);
    sdk = new OpenAI({
      baseURL: `${gateway.url}/v1`,
      apiKey: gateway.clientToken,
      maxRetries: 0,
      timeout: 30_000,
    });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((agent) => agent.stop("SIGTERM")));
    await gateway?.proc.stop("SIGTERM");
    await first?.close();
    await second?.close();
  });

  it("lists the servers' language models in GET /v1/models", async () => {
    const ids = [];
    for await (const model of sdk.models.list()) ids.push(model.id);
    expect(ids).toContain(GEMMA);
    expect(ids).toContain("llama-3-8b");
    const one = await sdk.models.retrieve(GEMMA);
    expect(one.id).toBe(GEMMA);
  });

  it("streams every token through gateway and agent with the openai SDK", async () => {
    const messages = [{ role: "user" as const, content: "tell the story of the fox" }];
    const before = first.chatRequests().length;
    const { data: stream, response } = await sdk.chat.completions
      .create({ model: GEMMA, messages, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    expect(response.headers.get("x-voxgate-backend")).toBe("llm-a");
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined | null;
    let deltas = 0;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta.content) {
        text += choice.delta.content;
        deltas++;
      }
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(expectedReply(messages));
    // Token by token, not one block at the end.
    expect(deltas).toBe(7);
    expect(finish).toBe("stop");
    expect(usage?.completion_tokens).toBe(7);
    const sent = first.chatRequests()[before];
    expect(sent?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(sent?.body).toMatchObject({ model: GEMMA, stream: true, messages });
  });

  it("answers a whole completion, honouring max_tokens", async () => {
    const messages = [{ role: "user" as const, content: "one two three four five" }];
    const completion = await sdk.chat.completions.create({
      model: "llama-3-8b",
      messages,
      max_tokens: 3,
      temperature: 0.2,
    });
    expect(completion.choices[0]?.message.content).toBe(expectedReply(messages, 3));
    expect(completion.choices[0]?.finish_reason).toBe("length");
    expect(completion.usage?.completion_tokens).toBe(3);
    // Only the second server runs that model.
    expect(second.chatRequests().at(-1)?.body).toMatchObject({ max_tokens: 3, temperature: 0.2 });
  });

  it("fails over to the next backend when the first fails before the first token", async () => {
    first.knobs.failStatus = 503;
    try {
      const beforeFirst = first.chatRequests().length;
      const messages = [{ role: "user" as const, content: "are you there" }];
      const { data, response } = await sdk.chat.completions
        .create({ model: GEMMA, messages })
        .withResponse();
      expect(data.choices[0]?.message.content).toBe(expectedReply(messages));
      expect(response.headers.get("x-voxgate-backend")).toBe("llm-b");
      expect(response.headers.get("x-voxgate-attempts")).toBe("2");
      expect(first.chatRequests().length).toBe(beforeFirst + 1);
    } finally {
      first.knobs.failStatus = undefined;
    }
  });

  it("a client that stops reading closes the model server's request", async () => {
    const gate = deferred();
    first.knobs.gate = gate.promise;
    try {
      const before = first.chatRequests().length;
      const stream = await sdk.chat.completions.create({
        model: GEMMA,
        messages: [{ role: "user", content: "a long answer nobody waits for" }],
        stream: true,
      });
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) break;
      }
      stream.controller.abort();
      const sent = first.chatRequests()[before];
      await sent?.closed;
      expect(sent?.closedEarly).toBe(true);
    } finally {
      first.knobs.gate = undefined;
      gate.resolve();
    }
  });

  it("a model no backend runs is 404 model_not_found, before any backend is called", async () => {
    const before = first.chatRequests().length + second.chatRequests().length;
    const error = await sdk.chat.completions
      .create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(404);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("model_not_found");
    expect(first.chatRequests().length + second.chatRequests().length).toBe(before);
  });

  it("the typed LlmService answers over REST/JSON too", async () => {
    const response = await fetch(`${gateway.url}/v1/text:generate`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ model: GEMMA, messages: [{ role: "user", content: "hello there" }] }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { text: string; finishReason: string };
    expect(body.text).toBe("Echo: hello there");
    expect(body.finishReason).toBe("stop");
  });

  it("a bad role is INVALID_ARGUMENT and reaches no backend", async () => {
    const before = first.chatRequests().length + second.chatRequests().length;
    const response = await fetch(`${gateway.url}/v1/text:generate`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ model: GEMMA, messages: [{ role: "robot", content: "x" }] }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toContain("role");
    expect(first.chatRequests().length + second.chatRequests().length).toBe(before);
  });

  it("age asked with no classifier connected is FAILED_PRECONDITION naming the capability", async () => {
    const pcm = renderTone(180, 24_000, 24_000);
    const wav = Buffer.concat([
      encodeWavHeader({ sampleRateHz: 24_000, channels: 1, dataBytes: pcm.byteLength }),
      pcm,
    ]);
    const response = await fetch(`${gateway.url}/v1/audio:analyze?kinds=ANALYSIS_KIND_AGE`, {
      method: "POST",
      headers: { authorization: `Bearer ${gateway.clientToken}`, "content-type": "audio/wav" },
      body: wav,
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { code: number; message: string };
    expect(body.code).toBe(9); // FAILED_PRECONDITION
    expect(body.message).toContain("classify_speaker");
  });
});
