/**
 * Per-token limits (OWASP API4) end to end: a real gateway on 127.0.0.1:0 with a real Agent, and
 * real clients of every protocol (Connect, gRPC, REST, OpenAI). Each refusal is RESOURCE_EXHAUSTED
 * (HTTP 429) naming the limit, with Retry-After, and reaches no backend. Two gateways on one real
 * PostgreSQL server share the counts.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "../services/auth/token-codec.js";
import type { TokenEntry } from "../services/auth/token-store.js";
import { type FailoverStack, startFailoverStack, waitUntil } from "./helpers/failover-stack.js";
import type { InProcessFakeEngine } from "./helpers/in-process-fake-engine.js";
import { type PostgresServer, startPostgresServer } from "./helpers/postgres-server.js";

const AGENT = "limits-agent";
const CONC = "vxg_limits-concurrent";
const RPM = "vxg_limits-per-minute";
const CHARS = "vxg_limits-chars";
const SHARED = "vxg_limits-shared";

const limitedTokens: TokenEntry[] = [
  { name: "one-at-a-time", sha256: hashToken(CONC), scopes: ["tts"], maxConcurrentCalls: 1 },
  { name: "two-a-minute", sha256: hashToken(RPM), scopes: ["tts"], maxRequestsPerMinute: 2 },
  { name: "fifty-chars", sha256: hashToken(CHARS), scopes: ["tts"], maxCharsPerDay: 50 },
];

const stacks: FailoverStack[] = [];
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.close()));
});

async function start(
  more: Parameters<typeof startFailoverStack>[1] = {},
): Promise<{ stack: FailoverStack; engine: InProcessFakeEngine }> {
  const stack = await startFailoverStack({}, { tokens: limitedTokens, ...more });
  stacks.push(stack);
  const engine = stack.addAgent(AGENT, { slots: 4, engine: { chunkDelayMs: 20 } }).engine;
  await stack.waitReady(AGENT);
  return { stack, engine };
}

/**
 * Waits for the next minute when less than 15 s are left of this one, so a test's requests all
 * fall into one fixed per-minute window.
 */
async function awayFromMinuteEdge(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 15_000) await new Promise((resolve) => setTimeout(resolve, left + 100));
}

async function failureOf(call: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call should have failed");
}

/** Every protocol's answer to one synthesis call with `token`: code, message, Retry-After. */
async function everyProtocol(stack: FailoverStack, token: string, text: string) {
  const answers: { via: string; code: Code; message: string; retryAfter: string | null }[] = [];
  for (const [via, protocol, httpVersion] of [
    ["connect", "connect", "1.1"],
    ["grpc", "grpc", "2"],
  ] as const) {
    const error = await failureOf(() =>
      stack.client({ token, protocol, httpVersion }).tts.synthesize({ text }),
    );
    answers.push({
      via,
      code: error.code,
      message: error.rawMessage,
      retryAfter: error.metadata.get("retry-after"),
    });
  }
  const rest = await fetch(`${stack.publicUrl}/v1/speech:synthesize`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ text }),
  });
  const restBody = (await rest.json()) as { code: number; message: string };
  answers.push({
    via: `rest ${rest.status}`,
    code: restBody.code,
    message: restBody.message,
    retryAfter: rest.headers.get("retry-after"),
  });
  const openai = await fetch(`${stack.publicUrl}/v1/audio/speech`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "tts-1", voice: "fake-voice", input: text }),
  });
  const openaiBody = (await openai.json()) as { error: { message: string; type: string } };
  answers.push({
    via: `openai ${openai.status} ${openaiBody.error.type}`,
    code: Code.ResourceExhausted,
    message: openaiBody.error.message,
    retryAfter: openai.headers.get("retry-after"),
  });
  return answers;
}

describe("per-token limits on every protocol", () => {
  it("refuses a token's second concurrent call naming maxConcurrentCalls", async () => {
    const { stack, engine } = await start();
    const controller = new AbortController();
    // 200 sentences of 60 ms: it holds until cancelled, however slow the machine.
    const long = Array.from({ length: 200 }, (_, i) => `Sentence ${i}.`).join(" ");
    const running = stack
      .client({ token: CONC })
      .tts.synthesize({ text: long }, { signal: controller.signal })
      .catch(() => undefined);
    await waitUntil(() => engine.calls.length === 1, "the first call to run");
    const answers = await everyProtocol(stack, CONC, "Refused.");
    controller.abort();
    await running;
    expect(answers.map((a) => a.via)).toEqual([
      "connect",
      "grpc",
      "rest 429",
      "openai 429 rate_limit_error",
    ]);
    for (const answer of answers) {
      expect(answer.code).toBe(Code.ResourceExhausted);
      expect(answer.message).toBe(
        'token "one-at-a-time" has 1 calls running; its limit is 1 concurrent calls (maxConcurrentCalls); retry when one ended',
      );
      expect(answer.retryAfter).toBe("1");
    }
    expect(engine.calls).toHaveLength(1);
    // Once the first call ended, the token may call again.
    await waitUntil(() => stack.gateway.registry.get(AGENT)?.inFlight === 0, "the call to end");
    await expect(
      stack.client({ token: CONC }).tts.synthesize({ text: "Again." }),
    ).resolves.toBeDefined();
  });

  it("refuses past maxRequestsPerMinute with Retry-After until the next minute", async () => {
    const { stack, engine } = await start();
    await awayFromMinuteEdge();
    await stack.client({ token: RPM }).tts.synthesize({ text: "One." });
    await stack.client({ token: RPM, protocol: "grpc", httpVersion: "2" }).tts.synthesize({
      text: "Two.",
    });
    const answers = await everyProtocol(stack, RPM, "Three.");
    for (const answer of answers) {
      expect(answer.code).toBe(Code.ResourceExhausted);
      expect(answer.message).toBe(
        'token "two-a-minute" made 2 requests this minute; its limit is 2 requests per minute (maxRequestsPerMinute)',
      );
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(answer.retryAfter)).toBeLessThanOrEqual(60);
    }
    expect(engine.calls).toHaveLength(2);
  });

  it("refuses text past maxCharsPerDay before any backend is asked", async () => {
    const { stack, engine } = await start();
    const forty = "This sentence has exactly forty chars!!.";
    expect(forty).toHaveLength(40);
    await stack.client({ token: CHARS }).tts.synthesize({ text: forty });
    const answers = await everyProtocol(stack, CHARS, "Eleven char");
    for (const answer of answers) {
      expect(answer.code).toBe(Code.ResourceExhausted);
      expect(answer.message).toBe(
        'token "fifty-chars" has 10 of its 50 characters per day left (maxCharsPerDay) and this call has 11',
      );
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    expect(engine.calls).toHaveLength(1);
    // What is left still fits.
    await stack.client({ token: CHARS }).tts.synthesize({ text: "Ten chars." });
  });
});

describe("per-token limits over two gateways on one PostgreSQL", () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgresServer();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("shares request counts through the database", async () => {
    const databaseUrl = await server.createDatabase("limits_shared");
    const tokens: TokenEntry[] = [
      { name: "shared", sha256: hashToken(SHARED), scopes: ["tts"], maxRequestsPerMinute: 3 },
    ];
    // Long flush interval: the test flushes by hand, so nothing depends on timing.
    const more = { tokens, usageFlushMs: 600_000, storage: { databaseUrl } };
    const a = await start(more);
    const b = await start(more);
    await awayFromMinuteEdge();
    await a.stack.client({ token: SHARED }).tts.synthesize({ text: "One." });
    await a.stack.client({ token: SHARED }).tts.synthesize({ text: "Two." });
    await a.stack.gateway.usage.flush();
    await b.stack.gateway.usage.flush();
    await b.stack.client({ token: SHARED }).tts.synthesize({ text: "Three." });
    const onB = await failureOf(() =>
      b.stack.client({ token: SHARED }).tts.synthesize({ text: "Four." }),
    );
    expect(onB.rawMessage).toBe(
      'token "shared" made 3 requests this minute; its limit is 3 requests per minute (maxRequestsPerMinute)',
    );
    await b.stack.gateway.usage.flush();
    await a.stack.gateway.usage.flush();
    const onA = await failureOf(() =>
      a.stack.client({ token: SHARED }).tts.synthesize({ text: "Four." }),
    );
    expect(onA.code).toBe(Code.ResourceExhausted);
    expect(onA.rawMessage).toContain("made 3 requests this minute");
  }, 60_000);
});
