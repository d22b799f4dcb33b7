/**
 * The admission queue end to end in one process: a real gateway on 127.0.0.1:0, real Agents
 * dialling it over gRPC with a fake engine behind the real engine host, and real clients
 * (Connect, gRPC, REST, the `openai` SDK). When every slot is busy a call waits its turn instead
 * of failing; the queue is fair across tokens; a full queue answers 429 with Retry-After.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import {
  CLIENT_TOKEN,
  type FailoverStack,
  OTHER_CLIENT_TOKEN,
  startFailoverStack,
  waitUntil,
} from "./helpers/failover-stack.js";
import type { InProcessFakeEngine } from "./helpers/in-process-fake-engine.js";

const AGENT = "queue-agent";

let stack: FailoverStack | undefined;
let engine: InProcessFakeEngine;

afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function start(
  slots: number,
  admission: { maxQueued?: number; maxWaitMs?: number } = {},
): Promise<FailoverStack> {
  stack = await startFailoverStack({}, { admission });
  // Each sentence is 3 chunks 20 ms apart: a call holds its slot for a while.
  engine = stack.addAgent(AGENT, { slots, engine: { chunkDelayMs: 20 } }).engine;
  await stack.waitReady(AGENT);
  return stack;
}

async function failureOf(call: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call should have failed");
}

const textOf = (who: string) => `Call ${who} starts here. It ends here.`;
/**
 * 200 sentences of 60 ms each: a call that holds its slot until the test cancels it, however slow
 * the machine (the tests never wait for it to end on its own).
 */
const HOLD_TEXT = Array.from({ length: 200 }, (_, i) => `Sentence ${i}.`).join(" ");

describe("admission queue", () => {
  it("serves 8 concurrent callers with 2 slots: every call succeeds, byte-exact", async () => {
    const s = await start(2);
    const client = s.client();
    const names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, s.gateway.registry.get(AGENT)?.inFlight ?? 0);
    }, 2);
    try {
      const results = await Promise.all(
        names.map((name) => client.tts.synthesize({ text: textOf(name), encoding: 1 })),
      );
      expect(s.gateway.registry.get(AGENT)?.callsTotal).toBe(8);
      for (const [i, name] of names.entries()) {
        const pcm = results[i]?.data ?? new Uint8Array();
        const expected = pcmOf(name);
        // The WAV body ends with exactly this call's PCM.
        expect(Buffer.from(pcm.subarray(pcm.byteLength - expected.byteLength))).toEqual(
          Buffer.from(expected),
        );
      }
    } finally {
      clearInterval(sampler);
    }
    expect(peak).toBeLessThanOrEqual(2);
    const stats = s.gateway.registry.admissionStats();
    // At most 2 started at once, so at least 6 waited and were admitted from the queue.
    expect(stats?.admittedTotal).toBeGreaterThanOrEqual(6);
    expect(stats?.queued).toBe(0);
    expect(stats?.refusedTotal).toBe(0);
  });

  it("takes turns between tokens: a busy token does not starve another", async () => {
    const s = await start(1);
    const a = s.client({ token: CLIENT_TOKEN });
    const b = s.client({ token: OTHER_CLIENT_TOKEN });
    const holder = new AbortController();
    const calls: Promise<unknown>[] = [
      a.tts
        .synthesize({ text: `Call A1 holds. ${HOLD_TEXT}` }, { signal: holder.signal })
        .catch(() => undefined),
    ];
    await waitUntil(() => engine.calls.length === 1, "the first call to hold the slot");
    for (const n of [2, 3, 4, 5, 6]) {
      calls.push(a.tts.synthesize({ text: textOf(`A${n}`) }));
      await waitUntil(() => queued(s) === n - 1, `A${n} to queue`);
    }
    for (const n of [1, 2]) {
      calls.push(b.tts.synthesize({ text: textOf(`B${n}`) }));
      await waitUntil(() => queued(s) === 5 + n, `B${n} to queue`);
    }
    holder.abort();
    await Promise.all(calls);
    const order = engine.calls.map((call) => /Call ([AB])\d/.exec(call.request.text)?.[1]);
    // Round-robin: after A1 (running), A and B alternate while both wait, then A's rest.
    expect(order).toEqual(["A", "A", "B", "A", "B", "A", "A", "A"]);
  });

  it("removes a waiting call at once when its caller cancels", async () => {
    const s = await start(1);
    const client = s.client();
    const holder = new AbortController();
    const first = client.tts
      .synthesize({ text: HOLD_TEXT }, { signal: holder.signal })
      .catch(() => undefined);
    await waitUntil(() => engine.calls.length === 1, "the first call to hold the slot");
    const controller = new AbortController();
    const waiting = failureOf(() =>
      client.tts.synthesize({ text: textOf("cancelled") }, { signal: controller.signal }),
    );
    await waitUntil(() => queued(s) === 1, "the second call to queue");
    controller.abort();
    await waitUntil(() => queued(s) === 0, "the cancelled call to leave the queue");
    expect((await waiting).code).toBe(Code.Canceled);
    holder.abort();
    await first;
    // The engine never saw the cancelled call.
    expect(engine.calls.map((c) => c.request.text)).toEqual([HOLD_TEXT]);
    expect(s.gateway.registry.admissionStats()?.expiredTotal).toBe(1);
  });

  it("answers a full queue with 429 and Retry-After on Connect, gRPC, REST and OpenAI routes", async () => {
    const s = await start(1, { maxQueued: 1 });
    const client = s.client();
    const controller = new AbortController();
    const holding = client.tts
      .synthesize({ text: HOLD_TEXT }, { signal: controller.signal })
      .catch(() => undefined);
    await waitUntil(() => engine.calls.length === 1, "the first call to hold the slot");
    const waiting = client.tts
      .synthesize({ text: textOf("queued") }, { signal: controller.signal })
      .catch(() => undefined);
    await waitUntil(() => queued(s) === 1, "the second call to queue");
    try {
      const connect = await failureOf(() => client.tts.synthesize({ text: textOf("x") }));
      expect(connect.code).toBe(Code.ResourceExhausted);
      expect(connect.rawMessage).toContain("admission queue is full");
      expect(connect.metadata.get("retry-after")).toMatch(/^[1-9]\d*$/);

      const grpc = await failureOf(() =>
        s.client({ protocol: "grpc", httpVersion: "2" }).tts.synthesize({ text: textOf("x") }),
      );
      expect(grpc.code).toBe(Code.ResourceExhausted);
      expect(grpc.metadata.get("retry-after")).toMatch(/^[1-9]\d*$/);

      const rest = await fetch(`${s.publicUrl}/v1/speech:synthesize`, {
        method: "POST",
        headers: { authorization: `Bearer ${CLIENT_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ text: textOf("x") }),
      });
      expect(rest.status).toBe(429);
      expect(rest.headers.get("retry-after")).toMatch(/^[1-9]\d*$/);
      expect(((await rest.json()) as { code: number }).code).toBe(Code.ResourceExhausted);

      const openai = await fetch(`${s.publicUrl}/v1/audio/speech`, {
        method: "POST",
        headers: { authorization: `Bearer ${CLIENT_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "tts-1", voice: "fake-voice", input: textOf("x") }),
      });
      expect(openai.status).toBe(429);
      expect(openai.headers.get("retry-after")).toMatch(/^[1-9]\d*$/);
      expect(await openai.json()).toEqual({
        error: {
          message: expect.stringContaining("admission queue is full") as unknown,
          type: "rate_limit_error",
          param: null,
          code: "resource_exhausted",
        },
      });
      // Nothing refused reached the engine.
      expect(engine.calls).toHaveLength(1);
      expect(s.gateway.registry.admissionStats()?.refusedTotal).toBe(4);
    } finally {
      controller.abort();
      await Promise.all([holding, waiting]);
    }
  });

  it("gives the openai SDK no failures with 2 slots and 8 concurrent calls", async () => {
    const s = await start(2);
    const sdk = new OpenAI({ baseURL: `${s.publicUrl}/v1`, apiKey: CLIENT_TOKEN, timeout: 30_000 });
    const bodies = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        // OpenAI's pcm is 24 kHz; the fake engine speaks 16 kHz, asked for as is (the
        // `sample_rate` extra) so the bytes compare one to one with the engine's.
        const response = await sdk.audio.speech.create({
          model: "tts-1",
          voice: "fake-voice",
          input: textOf(`sdk${i}`),
          response_format: "pcm",
          sample_rate: 16_000,
        } as OpenAI.Audio.SpeechCreateParams);
        return new Uint8Array(await response.arrayBuffer());
      }),
    );
    for (const [i, body] of bodies.entries()) {
      expect(Buffer.from(body)).toEqual(Buffer.from(pcmOf(`sdk${i}`)));
    }
    expect(s.gateway.registry.get(AGENT)?.callsTotal).toBe(8);
    expect(s.gateway.registry.admissionStats()?.refusedTotal).toBe(0);
  });
});

function queued(s: FailoverStack): number {
  return s.gateway.registry.admissionStats()?.queued ?? -1;
}

function pcmOf(who: string): Uint8Array {
  return engine.expectedPcm(textOf(who));
}
