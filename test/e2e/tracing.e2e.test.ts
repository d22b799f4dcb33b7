/**
 * One trace from the caller to the engine, across real processes: a gateway process (exporting
 * OTLP/HTTP protobuf, the default protocol) and an agent process (OTLP/HTTP JSON) both send their
 * spans to a small OTLP receiver in test/. A caller's W3C `traceparent` on a Connect, gRPC or REST
 * call becomes the parent of the gateway's HTTP span; the agent's call span is the child of the
 * gateway's routing attempt (the trace context rides on the work offer); the engine's span is the
 * child of the agent's call. A call that waits for a slot shows a `voxgate.queue` span.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient } from "../../clients/voxgate-client.js";
import {
  type OtlpReceiver,
  type ReceivedSpan,
  startOtlpReceiver,
} from "../helpers/otlp-receiver.js";
import { waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

const SERVER = 2;
const CLIENT = 3;

/** A caller's span: a fresh trace id and span id, and the `traceparent` naming them. */
function callerSpan() {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

describe("tracing across the gateway and agent processes", () => {
  let receiver: OtlpReceiver;
  let gateway: GatewayProcess;
  let agent: ReturnType<typeof startAgentProcess>;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // Short batches: spans reach the receiver soon after a call.
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: "100" };
    gateway = await startGatewayProcess({ env: otel, readyTimeoutMs: 60_000 });
    // One slot: a second call waits in the admission queue while the first holds it.
    agent = startAgentProcess(gateway, "trace-agent", {
      ...otel,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      VOXGATE_AGENT_ENGINE: "echo",
      VOXGATE_AGENT_SLOTS: "1",
    });
    await agent.connected;
  }, 120_000);

  afterAll(async () => {
    await agent?.proc.stop();
    await gateway?.proc.stop();
    await receiver?.close();
  });

  /** Waits until the trace holds both processes' SERVER spans (the last to end); returns it. */
  async function traceOf(traceId: string): Promise<ReceivedSpan[]> {
    return waitFor(
      () => {
        const spans = receiver.spans.filter((s) => s.traceId === traceId);
        const gatewayDone = spans.some((s) => s.service === "voxgate-gateway" && s.kind === SERVER);
        // The agent's call span ends last: after the gateway closed the call stream.
        const agentDone = spans.some((s) => s.service === "voxgate-agent" && s.kind === SERVER);
        return gatewayDone && agentDone && spans;
      },
      { timeoutMs: 30_000, what: `the spans of trace ${traceId}` },
    );
  }

  function one(spans: ReceivedSpan[], test: (s: ReceivedSpan) => boolean, what: string) {
    const found = spans.filter(test);
    expect(found, what).toHaveLength(1);
    return found[0] as ReceivedSpan;
  }

  /** The chain caller → HTTP → RPC → attempt → agent call → engine, each the parent of the next. */
  function expectChain(spans: ReceivedSpan[], callerSpanId: string, rpc: string) {
    const http = one(spans, (s) => s.kind === SERVER && s.service === "voxgate-gateway", "HTTP");
    expect(http.parentSpanId).toBe(callerSpanId);
    const call = one(spans, (s) => s.name === rpc, rpc);
    expect(call.parentSpanId).toBe(http.spanId);
    expect(call.attributes["rpc.connect_rpc.error_code"]).toBe("ok");
    const attempt = one(spans, (s) => s.name === "voxgate.attempt", "attempt");
    expect(attempt).toMatchObject({ kind: CLIENT, parentSpanId: call.spanId });
    expect(attempt.attributes).toMatchObject({
      "voxgate.backend": "trace-agent",
      "voxgate.attempt": 1,
      "voxgate.outcome": "ok",
    });
    const agentCall = one(
      spans,
      (s) => s.name === "voxgate.v1.GPUBackendService/Synthesize",
      "agent call",
    );
    expect(agentCall).toMatchObject({
      service: "voxgate-agent",
      kind: SERVER,
      parentSpanId: attempt.spanId,
    });
    const engine = one(spans, (s) => s.name === "voxgate.engine.synthesize", "engine");
    expect(engine).toMatchObject({ service: "voxgate-agent", parentSpanId: agentCall.spanId });
    expect(engine.attributes["voxgate.engine"]).toBe("echo");
    expect(Number(engine.attributes["voxgate.audio_bytes"])).toBe(4000);
    // Durations are real: each span ended after it started.
    for (const span of [http, call, attempt, agentCall, engine]) {
      expect(span.endNs).toBeGreaterThan(span.startNs);
    }
    return { http, call, attempt, agentCall, engine };
  }

  const params = { "echo.bytes": "4000" };

  it("continues a Connect caller's traceparent down to the engine", async () => {
    const caller = callerSpan();
    const res = await fetch(`${gateway.url}/voxgate.v1.TtsService/Synthesize`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
        traceparent: caller.traceparent,
      },
      body: JSON.stringify({ text: "hello", params }),
    });
    const body = await res.text();
    expect(res.status, body).toBe(200);
    const spans = await traceOf(caller.traceId);
    const chain = expectChain(spans, caller.spanId, "voxgate.v1.TtsService/Synthesize");
    expect(chain.http.attributes["url.path"]).toBe("/voxgate.v1.TtsService/Synthesize");
    const ms = (span: ReceivedSpan) => (Number(span.endNs - span.startNs) / 1e6).toFixed(1);
    console.info(
      `[figures] one Connect call's trace: ${Object.values(chain)
        .map((span) => `${span.service}/${span.name} ${ms(span)} ms`)
        .join(" > ")}`,
    );
    // The gateway exported protobuf and the agent JSON: both reached the receiver.
    expect(receiver.contentTypes).toContain("application/x-protobuf");
    expect(receiver.contentTypes.some((t) => t.startsWith("application/json"))).toBe(true);
  });

  it("continues a gRPC caller's traceparent (a server stream)", async () => {
    const caller = callerSpan();
    const client = createVoxgateClient({
      baseUrl: gateway.url,
      token: gateway.clientToken,
      protocol: "grpc",
      httpVersion: "2",
    });
    try {
      for await (const _ of client.tts.streamSynthesize(
        { text: "hello", params },
        { headers: { traceparent: caller.traceparent } },
      )) {
        // drain
      }
    } finally {
      client.close();
    }
    expectChain(
      await traceOf(caller.traceId),
      caller.spanId,
      "voxgate.v1.TtsService/StreamSynthesize",
    );
  });

  it("continues a REST caller's traceparent through the in-process call", async () => {
    const caller = callerSpan();
    const res = await fetch(`${gateway.url}/v1/speech:synthesize`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
        traceparent: caller.traceparent,
      },
      body: JSON.stringify({ text: "hello", params }),
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const { http } = expectChain(
      await traceOf(caller.traceId),
      caller.spanId,
      "voxgate.v1.TtsService/Synthesize",
    );
    expect(http.attributes["url.path"]).toBe("/v1/speech:synthesize");
  });

  it("shows the wait for a slot as a voxgate.queue span", async () => {
    const holder = callerSpan();
    const waiter = callerSpan();
    const client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
    try {
      // The holder keeps the only slot for 8 s after its first chunk: time enough, even on a
      // loaded machine, for the waiter to reach the queue (checked below, not assumed).
      const held = client.tts
        .streamSynthesize(
          {
            text: "hold",
            params: { "echo.bytes": "8000", "echo.chunk_bytes": "2000", "echo.hold_ms": "8000" },
          },
          { headers: { traceparent: holder.traceparent } },
        )
        [Symbol.asyncIterator]();
      await held.next();
      const holding = (async () => {
        while (!(await held.next()).done) {
          // drain
        }
      })();
      const waiting = (async () => {
        for await (const _ of client.tts.streamSynthesize(
          { text: "wait", params },
          { headers: { traceparent: waiter.traceparent } },
        )) {
          // drain
        }
      })();
      // The waiter is in the queue while the holder holds the slot (read from /metrics).
      await waitFor(
        async () => {
          const res = await fetch(`${gateway.url}/metrics`, {
            headers: { authorization: `Bearer ${gateway.clientToken}` },
          });
          return /^voxgate_queue_depth 1$/m.test(await res.text());
        },
        { timeoutMs: 8_000, what: "the second call to queue" },
      );
      await Promise.all([holding, waiting]);
    } finally {
      client.close();
    }
    const spans = await traceOf(waiter.traceId);
    const { call } = expectChain(spans, waiter.spanId, "voxgate.v1.TtsService/StreamSynthesize");
    const queue = one(spans, (s) => s.name === "voxgate.queue", "queue");
    expect(queue.parentSpanId).toBe(call.spanId);
    expect(queue.attributes["voxgate.backend"]).toBe("trace-agent");
    // The holder's trace has no queue span: it found the slot free.
    const holderSpans = await traceOf(holder.traceId);
    expect(holderSpans.some((s) => s.name === "voxgate.queue")).toBe(false);
  });
});
