import { context, trace } from "@opentelemetry/api";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  currentTraceCarrier,
  extractTraceContext,
  inSpan,
  iterateInSpan,
  tracer,
} from "./spans.js";
import { startTracing, type Tracing } from "./start-tracing.js";

describe("spans without tracing", () => {
  it("return the iterable itself and carry no trace context (no cost when off)", async () => {
    const source = (async function* () {
      yield 1;
    })();
    const span = tracer.startSpan("off");
    expect(span.isRecording()).toBe(false);
    expect(iterateInSpan(span, context.active(), () => source)).toBe(source);
    expect(currentTraceCarrier()).toEqual({ traceparent: "", tracestate: "" });
  });
});

describe("spans with an in-memory exporter", () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  beforeAll(async () => {
    tracing = await startTracing(undefined, { exporter, simpleProcessor: true });
  });
  afterAll(() => tracing.shutdown());

  it("continues a caller's traceparent and makes what an iteration starts its child", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parent = extractTraceContext({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    const root = tracer.startSpan("root", {}, parent);
    const seen: string[] = [];
    const items = iterateInSpan(root, parent, async function* () {
      // Each next() runs with `root` active: a span or an offer made here is its child.
      seen.push(currentTraceCarrier().traceparent);
      yield await inSpan("child", {}, async () => "a");
      seen.push(currentTraceCarrier().traceparent);
    });
    const out: string[] = [];
    for await (const item of items) out.push(item);
    expect(out).toEqual(["a"]);
    const spans = exporter.getFinishedSpans();
    const rootSpan = spans.find((s) => s.name === "root");
    const child = spans.find((s) => s.name === "child");
    expect(rootSpan?.spanContext().traceId).toBe(traceId);
    expect(rootSpan?.parentSpanContext?.spanId).toBe("00f067aa0ba902b7");
    expect(child?.parentSpanContext?.spanId).toBe(rootSpan?.spanContext().spanId);
    expect(seen).toEqual([
      `00-${traceId}-${rootSpan?.spanContext().spanId}-01`,
      `00-${traceId}-${rootSpan?.spanContext().spanId}-01`,
    ]);
    expect(trace.getSpan(context.active())).toBeUndefined();
  });

  it("ends a span failed when its iteration throws", async () => {
    exporter.reset();
    const span = tracer.startSpan("failing");
    const items = iterateInSpan(span, context.active(), async function* () {
      yield 1;
      throw new Error("engine broke");
    });
    await expect(async () => {
      for await (const _ of items) {
        // read
      }
    }).rejects.toThrow("engine broke");
    const [ended] = exporter.getFinishedSpans();
    expect(ended?.status).toMatchObject({ code: 2, message: "engine broke" });
  });
});
