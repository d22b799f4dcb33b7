/**
 * A fake OpenAI-compatible LLM server (what vLLM, llama.cpp's `llama-server` and Ollama serve),
 * written from OpenAI's published chat API: `GET /v1/models` and `POST /v1/chat/completions`,
 * whole (`chat.completion`) or streamed as SSE `chat.completion.chunk` events ending with
 * `data: [DONE]`, with a final usage chunk when `stream_options.include_usage` is set. The answer
 * is deterministic ({@link expectedReply}) so tests can check every token arrived.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type RecordedRequest, sendJson, serveFake } from "./fake-server-support.js";

/** Knobs a test turns while the server runs. */
export interface FakeOpenAiLlmKnobs {
  /** When set, every chunk after the first waits for this promise (or the client leaving). */
  gate: Promise<void> | undefined;
  /** Pause between chunks, in ms. */
  pieceDelayMs: number;
  /** When set, chat calls fail with this status before any token. */
  failStatus: number | undefined;
  /** When true, the stream stops after the first token without `[DONE]` (a crashed server). */
  cutMidStream: boolean;
}

/** A running fake. */
export interface FakeOpenAiLlmServer {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Models it serves. */
  models: readonly string[];
  /** Knobs. */
  knobs: FakeOpenAiLlmKnobs;
  /** Every chat request received, in order. */
  chatRequests(): RecordedRequest[];
  /** Stops the server. */
  close(): Promise<void>;
}

/** Options of {@link startFakeOpenAiLlmServer}. */
export interface FakeOpenAiLlmOptions {
  /** Models served. @default ["llama-3-8b"] */
  models?: readonly string[];
  /** Required bearer key; empty accepts any. */
  apiKey?: string;
}

/** The tokens the fake answers `messages` with: "Echo:" and the last user message's words. */
export function replyTokens(messages: ReadonlyArray<{ role: string; content: string }>): string[] {
  const last = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
  return ["Echo:", ...last.split(/\s+/).filter(Boolean)].map((w, i) => (i === 0 ? w : ` ${w}`));
}

/** The whole answer to `messages`, cut to `maxTokens` tokens when set. */
export function expectedReply(
  messages: ReadonlyArray<{ role: string; content: string }>,
  maxTokens?: number,
): string {
  const tokens = replyTokens(messages);
  return (maxTokens ? tokens.slice(0, maxTokens) : tokens).join("");
}

/** Starts the fake on 127.0.0.1 at a free port. */
export async function startFakeOpenAiLlmServer(
  options: FakeOpenAiLlmOptions = {},
): Promise<FakeOpenAiLlmServer> {
  const models = options.models ?? ["llama-3-8b"];
  const requests: RecordedRequest[] = [];
  const knobs: FakeOpenAiLlmKnobs = {
    gate: undefined,
    pieceDelayMs: 0,
    failStatus: undefined,
    cutMidStream: false,
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, entry: RecordedRequest) => {
    if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      sendJson(res, entry, 401, { error: { message: "Incorrect API key provided", type: "auth" } });
      return;
    }
    const path = (req.url ?? "").split("?")[0];
    if (req.method === "GET" && path === "/v1/models") {
      sendJson(res, entry, 200, {
        object: "list",
        data: models.map((id) => ({ id, object: "model", created: 0, owned_by: "fake" })),
      });
      return;
    }
    if (req.method !== "POST" || path !== "/v1/chat/completions") {
      sendJson(res, entry, 404, { error: { message: `no route ${req.method} ${path}` } });
      return;
    }
    const body = (entry.body ?? {}) as {
      model?: string;
      messages?: Array<{ role: string; content: string }>;
      stream?: boolean;
      max_tokens?: number;
      stream_options?: { include_usage?: boolean };
    };
    if (!body.model || !models.includes(body.model)) {
      sendJson(res, entry, 404, {
        error: { message: `The model \`${body.model}\` does not exist.`, type: "NotFoundError" },
      });
      return;
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      sendJson(res, entry, 400, { error: { message: "messages must not be empty" } });
      return;
    }
    if (knobs.failStatus) {
      sendJson(res, entry, knobs.failStatus, { error: { message: "the model is not loaded" } });
      return;
    }
    const all = replyTokens(body.messages);
    const tokens = body.max_tokens ? all.slice(0, body.max_tokens) : all;
    const finish = tokens.length < all.length ? "length" : "stop";
    const usage = {
      prompt_tokens: body.messages.reduce((n, m) => n + m.content.split(/\s+/).length, 0),
      completion_tokens: tokens.length,
      total_tokens: 0,
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const id = "chatcmpl-fake";
    if (!body.stream) {
      sendJson(res, entry, 200, {
        id,
        object: "chat.completion",
        created: 0,
        model: body.model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: tokens.join("") },
            finish_reason: finish,
          },
        ],
        usage,
      });
      return;
    }
    entry.status = 200;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const send = (value: unknown) => {
      const text = `data: ${JSON.stringify(value)}\n\n`;
      entry.bytesSent += Buffer.byteLength(text);
      res.write(text);
    };
    const chunk = (delta: Record<string, unknown>, finishReason: string | null) => ({
      id,
      object: "chat.completion.chunk",
      created: 0,
      model: body.model,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
    });
    send(chunk({ role: "assistant", content: "" }, null));
    for (const [index, token] of tokens.entries()) {
      if (res.destroyed) return;
      if (index === 1 && knobs.gate) await Promise.race([knobs.gate, entry.closed]);
      if (index > 0 && knobs.pieceDelayMs > 0) {
        await new Promise((r) => setTimeout(r, knobs.pieceDelayMs));
      }
      if (res.destroyed) return;
      send(chunk({ content: token }, null));
      if (knobs.cutMidStream) {
        res.destroy();
        return;
      }
    }
    send(chunk({}, finish));
    if (body.stream_options?.include_usage) {
      send({
        id,
        object: "chat.completion.chunk",
        created: 0,
        model: body.model,
        choices: [],
        usage,
      });
    }
    res.end("data: [DONE]\n\n");
  };

  const listening = await serveFake(requests, handle);
  return {
    url: listening.url,
    models,
    knobs,
    chatRequests: () => requests.filter((r) => r.path.startsWith("/v1/chat/completions")),
    close: listening.close,
  };
}
