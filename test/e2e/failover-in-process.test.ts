/**
 * Failover, circuit breaker, capability routing and cancellation with a real gateway and real
 * Agents in one process (fake engines behind the real engine host, reached over the real agent
 * link), where timing can be controlled exactly: "before the first audio byte" is a fake engine
 * that waits before its first chunk. Figures are printed as `[figures]` lines.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import {
  AgentService,
  type ConnectRequest,
  ConnectRequestSchema,
  type ConnectResponse,
} from "../../gen/voxgate/v1/agent_pb.js";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { BackendState, BreakerState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { CapabilitiesSchema, Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import { WAV_HEADER_BYTES } from "../../services/audio/wav.js";
import { createGrpcServiceDefinition } from "../../services/grpc/service-definition.js";
import type { BackendEvent } from "../../services/registry/index.js";
import {
  type FailoverStack,
  percentile,
  startFailoverStack,
  waitUntil,
} from "../helpers/failover-stack.js";

const SHORT_TEXT = "One fish. Two fish. Red fish.";
const LONG_TEXT = Array.from({ length: 20 }, (_, i) => `Sentence number ${i + 1}.`).join(" ");

const stacks: FailoverStack[] = [];
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((stack) => stack.close()));
});

async function stackOf(health: Parameters<typeof startFailoverStack>[0] = {}) {
  const stack = await startFailoverStack(health);
  stacks.push(stack);
  return stack;
}

/** Streams `text`; returns the audio after the WAV header, the response headers and timings. */
async function speak(stack: FailoverStack, text: string, options: { signal?: AbortSignal } = {}) {
  const client = stack.client();
  const parts: Uint8Array[] = [];
  let headers: Headers | undefined;
  const started = performance.now();
  let firstChunkMs: number | undefined;
  for await (const chunk of client.tts.streamSynthesize(
    { text },
    { ...options, onHeader: (h) => (headers = h) },
  )) {
    firstChunkMs ??= performance.now() - started;
    parts.push(chunk.data);
  }
  return {
    audio: new Uint8Array(Buffer.concat(parts)).subarray(WAV_HEADER_BYTES),
    backend: headers?.get("x-voxgate-backend"),
    attempts: headers?.get("x-voxgate-attempts"),
    firstChunkMs: firstChunkMs ?? Number.NaN,
  };
}

async function failureOf(call: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call should have failed");
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe("failover before the first audio byte", () => {
  it("gives the caller complete audio from the next backend when the first dies before its first byte", async () => {
    const stack = await stackOf();
    // The primary waits 400 ms before its first chunk: time enough to kill it mid-call.
    const primary = stack.addAgent("primary", { priority: 0, engine: { chunkDelayMs: 400 } });
    const backup = stack.addAgent("backup", { priority: 1, engine: { chunkDelayMs: 5 } });
    await stack.waitReady("primary");
    await stack.waitReady("backup");

    let killedAt = 0;
    const call = speak(stack, SHORT_TEXT);
    await waitUntil(() => primary.engine.calls.length === 1, "the primary to start the call");
    killedAt = performance.now();
    void primary.agent.shutdown();
    const result = await call;
    const failoverMs = performance.now() - killedAt;

    expect(result.backend).toBe("backup");
    expect(result.attempts).toBe("2");
    expect(same(result.audio, backup.engine.expectedPcm(SHORT_TEXT))).toBe(true);
    expect(primary.engine.calls[0]?.chunks).toHaveLength(0);
    expect(primary.engine.calls[0]?.aborted).toBe(true);
    await waitUntil(() => stack.gateway.registry.get("backup")?.inFlight === 0, "backup slot");
    console.info(
      `[figures] in-process: primary stopped before its first byte → whole call done on backup ${Math.round(failoverMs)} ms later`,
    );
  });

  it("answers UNAVAILABLE within 1 s naming why when nothing is healthy", async () => {
    const stack = await stackOf({ breakerFailureThreshold: 1, breakerCooldownMs: 60_000 });
    stack.addAgent("a");
    const b = stack.addAgent("b");
    await stack.waitReady("a");
    await stack.waitReady("b");
    stack.gateway.registry.drain("a", "drained by admin");
    b.faults.mode = "all";
    const first = await failureOf(() => stack.client().tts.synthesize({ text: SHORT_TEXT }));
    expect(first.code).toBe(Code.Unavailable);
    expect(first.rawMessage).toBe(
      "backend b failed: injected failure on b; no backend offering synthesize can take the call now: a draining",
    );
    const started = performance.now();
    const error = await failureOf(() => stack.client().tts.synthesize({ text: SHORT_TEXT }));
    const answerMs = performance.now() - started;
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe(
      "no backend offering synthesize can take the call now: a draining; b breaker open",
    );
    // Milliseconds on a quiet machine; far below the 30 s call deadline it must not wait for.
    expect(answerMs).toBeLessThan(10_000);
    expect(b.faults.calls).toBe(1);
    console.info(
      `[figures] in-process: nothing healthy → UNAVAILABLE in ${answerMs.toFixed(1)} ms`,
    );
  });

  it("measures the latency failover adds (first backend fails fast)", async () => {
    // Cooldown 0: the broken backend is tried first on every call (a trial each time).
    const stack = await stackOf({ breakerCooldownMs: 0 });
    const broken = stack.addAgent("broken", { priority: 0, engine: { chunkDelayMs: 5 } });
    stack.addAgent("good", { priority: 1, engine: { chunkDelayMs: 5 } });
    await stack.waitReady("broken");
    await stack.waitReady("good");
    broken.faults.mode = "all";

    const calls = 20;
    const failover: number[] = [];
    for (let i = 0; i < calls; i++) {
      const result = await speak(stack, SHORT_TEXT);
      expect(result.backend).toBe("good");
      expect(result.attempts).toBe("2");
      failover.push(result.firstChunkMs);
    }
    expect(broken.faults.failed).toBe(calls);

    stack.gateway.registry.drain("broken", "test: direct calls");
    const direct: number[] = [];
    for (let i = 0; i < calls; i++) {
      const result = await speak(stack, SHORT_TEXT);
      expect(result.attempts).toBe("1");
      direct.push(result.firstChunkMs);
    }
    const p50 = percentile(failover, 50) - percentile(direct, 50);
    const p99 = percentile(failover, 99) - percentile(direct, 99);
    console.info(
      `[figures] in-process: first byte, direct p50 ${percentile(direct, 50).toFixed(1)} ms / p99 ${percentile(direct, 99).toFixed(1)} ms; ` +
        `after one failed backend p50 ${percentile(failover, 50).toFixed(1)} ms / p99 ${percentile(failover, 99).toFixed(1)} ms; ` +
        `failover adds p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (${calls} calls each)`,
    );
    // Generous: one extra offer + call stream over loopback on a shared 2-core machine.
    expect(percentile(failover, 50)).toBeLessThan(percentile(direct, 50) + 250);
  });
});

describe("circuit breaker", () => {
  it("ejects a backend failing half its calls and takes it back after the cooldown; callers never notice", async () => {
    const stack = await stackOf({ breakerCooldownMs: 1000, breakerHalfOpenSuccesses: 2 });
    const flaky = stack.addAgent("flaky", { priority: 0, engine: { chunkDelayMs: 1 } });
    const steady = stack.addAgent("steady", { priority: 1, engine: { chunkDelayMs: 1 } });
    await stack.waitReady("flaky");
    await stack.waitReady("steady");
    const breakerEvents: BackendEvent[] = [];
    const unsubscribe = stack.gateway.registry.watch((e) => {
      if (e.change === "breaker" && e.backend.id === "flaky") breakerEvents.push(e);
    });
    try {
      flaky.faults.mode = "every-other";
      const served: string[] = [];
      for (let i = 0; i < 14; i++) {
        const result = await speak(stack, SHORT_TEXT);
        expect(same(result.audio, steady.engine.expectedPcm(SHORT_TEXT))).toBe(true);
        served.push(`${result.backend}/${result.attempts}`);
      }
      // Ten calls reached flaky (five failed over to steady), then the breaker opened.
      expect(flaky.faults.calls).toBe(10);
      expect(flaky.faults.failed).toBe(5);
      expect(served.slice(0, 10)).toEqual(
        Array.from({ length: 5 }, () => ["steady/2", "flaky/1"]).flat(),
      );
      expect(served.slice(10)).toEqual(Array(4).fill("steady/1"));
      const listed = await stack.client().backends.listBackends({});
      const shown = listed.backends.find((b) => b.id === "flaky");
      expect(shown?.breaker).toBe(BreakerState.OPEN);
      expect(shown?.state).toBe(BackendState.READY);
      expect(shown?.lastError).toBe("injected failure on flaky");
      expect(shown?.failuresTotal).toBe(5n);

      flaky.faults.mode = "none";
      const openedAt = performance.now();
      await waitUntil(
        () => stack.gateway.registry.get("flaky")?.breaker !== BreakerState.OPEN,
        "the cooldown",
        3000,
      );
      const back: string[] = [];
      for (let i = 0; i < 3; i++) back.push((await speak(stack, SHORT_TEXT)).backend ?? "");
      expect(back).toEqual(["flaky", "flaky", "flaky"]);
      expect(stack.gateway.registry.get("flaky")?.breaker).toBe(BreakerState.CLOSED);
      expect(breakerEvents.map((e) => e.backend.breaker)).toEqual([
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
      ]);
      console.info(
        `[figures] in-process: breaker opened after 10 calls (5 failed); half-open ${Math.round(performance.now() - openedAt)} ms after healing (cooldown 1000 ms)`,
      );
    } finally {
      unsubscribe();
    }
  });
});

describe("agent liveness in the registry", () => {
  it("gives a flapping, half-registered agent no call", async () => {
    const stack = await stackOf({ probeIntervalMs: 100, probeTimeoutMs: 150 });
    const registry = stack.gateway.registry;
    const events: BackendEvent[] = [];
    registry.watch((e) => {
      if (e.backend.id === "flapper") events.push(e);
    });
    const Client = grpc.makeGenericClientConstructor(
      createGrpcServiceDefinition(AgentService),
      "AgentService",
    ) as unknown as new (
      address: string,
      credentials: grpc.ChannelCredentials,
    ) => grpc.Client & {
      connect(metadata: grpc.Metadata): grpc.ClientDuplexStream<ConnectRequest, ConnectResponse>;
    };
    const metadata = new grpc.Metadata();
    metadata.set("authorization", "Bearer vxg_failover-agent-token");
    // Say hello, never heartbeat, never open a call stream, hang up; three times over.
    for (let round = 0; round < 3; round++) {
      const client = new Client(`127.0.0.1:${stack.agentPort}`, grpc.credentials.createInsecure());
      const control = client.connect(metadata);
      control.on("error", () => {});
      control.write(
        create(ConnectRequestSchema, {
          kind: {
            case: "hello",
            value: {
              agentId: "flapper",
              version: "test",
              capabilities: create(CapabilitiesSchema, {
                slots: 4,
                engines: [{ id: "fake-tts", features: [Feature.SYNTHESIZE] }],
              }),
            },
          },
        }),
      );
      await waitUntil(() => registry.get("flapper") !== undefined, "the flapper to register");
      const error = await failureOf(() => stack.client().tts.synthesize({ text: SHORT_TEXT }));
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toMatch(/flapper (pending|unhealthy)/);
      control.cancel();
      client.close();
      await waitUntil(() => registry.get("flapper") === undefined, "the flapper to leave");
    }
    expect(events.filter((e) => e.change === "added")).toHaveLength(3);
    expect(events.some((e) => e.backend.state === BackendState.READY)).toBe(false);
    expect(events.every((e) => e.backend.callsTotal === 0)).toBe(true);
  });

  it("carries a client's cancellation to the agent within 200 ms and frees the slot", async () => {
    const stack = await stackOf();
    const agent = stack.addAgent("solo", { slots: 1, engine: { chunkDelayMs: 50 } });
    await stack.waitReady("solo");
    const delays: number[] = [];
    for (let round = 0; round < 5; round++) {
      const controller = new AbortController();
      let abortedAt = 0;
      const error = await failureOf(async () => {
        for await (const _chunk of stack
          .client()
          .tts.streamSynthesize({ text: LONG_TEXT }, { signal: controller.signal })) {
          abortedAt = performance.now();
          controller.abort();
        }
      });
      expect(error.code).toBe(Code.Canceled);
      const call = agent.engine.calls[round];
      await waitUntil(() => call?.aborted === true, "the engine's abort", 2000);
      delays.push((call?.abortedAt ?? Number.POSITIVE_INFINITY) - abortedAt);
      await waitUntil(
        () => stack.gateway.registry.get("solo")?.inFlight === 0 && agent.host.inFlight === 0,
        "the slot to free",
        2000,
      );
    }
    expect(stack.gateway.registry.get("solo")?.failuresTotal).toBe(0);
    console.info(
      `[figures] in-process: client cancel → engine abort p50 ${percentile(delays, 50).toFixed(1)} ms, max ${Math.max(...delays).toFixed(1)} ms (5 calls); slot freed each time`,
    );
    expect(Math.max(...delays)).toBeLessThan(200);
  });
});

describe("capability routing", () => {
  /** Capabilities of a qwen3-tts engine of `size` that can speak clone prompts. */
  const cloneCapable = (size: string) => () =>
    create(CapabilitiesSchema, {
      slots: 2,
      engines: [
        {
          id: "qwen-tts",
          model: { family: "qwen3-tts", size },
          features: [Feature.SYNTHESIZE, Feature.CLONE_PROMPT_SYNTHESIZE],
          sampleRateHz: 16_000,
        },
      ],
    });

  it("sends a clone-prompt synthesis only to a backend whose model matches the prompt", async () => {
    const stack = await stackOf();
    const seen: Record<string, string[]> = { big: [], small: [] };
    for (const [id, size, priority] of [
      ["big", "1.7b", 5],
      ["small", "0.6b", 0],
    ] as const) {
      stack.addAgent(id, {
        priority,
        capabilities: cloneCapable(size),
        async *synthesize(request) {
          const prompt =
            request.voice?.kind.case === "clonePrompt" ? request.voice.kind.value : undefined;
          seen[id]?.push(`${prompt?.model?.family} ${prompt?.model?.size} ${prompt?.digest}`);
          yield {
            kind: {
              case: "format",
              value: { encoding: AudioEncoding.PCM, sampleRateHz: 16_000, channels: 1 },
            },
          };
          yield { kind: { case: "audio", value: new Uint8Array([1, 2, 3, 4]) } };
        },
      });
    }
    await stack.waitReady("big");
    await stack.waitReady("small");
    const registry = stack.gateway.registry;

    const speakWithPrompt = async (size: string) => {
      let served = "";
      const kinds: string[] = [];
      for await (const piece of registry.call(
        {
          feature: Feature.CLONE_PROMPT_SYNTHESIZE,
          modelFamily: "qwen3-tts",
          modelSize: size,
        },
        { timeoutMs: 5000, onFirstItem: (backend) => (served = backend.id) },
        ({ backend, signal, timeoutMs }) =>
          backend.client.synthesize(
            {
              text: "Hello.",
              voice: {
                kind: {
                  case: "clonePrompt",
                  value: { digest: "ab".repeat(32), model: { family: "qwen3-tts", size } },
                },
              },
            },
            { signal, ...(timeoutMs !== undefined ? { timeoutMs } : {}) },
          ),
      )) {
        kinds.push(piece.kind.case ?? "");
      }
      return { served, kinds };
    };

    // "small" has the better priority, but a prompt made by 1.7b only works on "big".
    for (let i = 0; i < 3; i++) {
      expect(await speakWithPrompt("1.7b")).toEqual({ served: "big", kinds: ["format", "audio"] });
    }
    expect((await speakWithPrompt("0.6b")).served).toBe("small");
    expect(seen.big).toEqual(Array(3).fill(`qwen3-tts 1.7b ${"ab".repeat(32)}`));
    expect(seen.small).toEqual([`qwen3-tts 0.6b ${"ab".repeat(32)}`]);

    const missing = await failureOf(() => speakWithPrompt("7b"));
    expect(missing.code).toBe(Code.FailedPrecondition);
    expect(missing.rawMessage).toBe(
      'no connected backend offers clone_prompt_synthesize, model "qwen3-tts 7b"',
    );
    // Through the public API too: an engine no backend hosts is FAILED_PRECONDITION.
    const engine = await failureOf(() =>
      stack.client().tts.synthesize({ text: SHORT_TEXT, engine: "piper" }),
    );
    expect(engine.code).toBe(Code.FailedPrecondition);
    expect(engine.rawMessage).toBe('no connected backend offers synthesize, engine "piper"');
  });
});
