import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { VOXGATE_VERSION } from "../version.js";

/**
 * voxgate's tracer. A proxy: it records nothing until {@link startTracing} registered a provider
 * (and then delegates to it), so components may take it at import time.
 */
export const tracer = trace.getTracer("voxgate", VOXGATE_VERSION);

export { SpanKind };

/** Marks `span` failed with `err`'s message (and records it as an exception event). */
export function failSpan(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  const message = err instanceof Error ? err.message : String(err);
  span.recordException(err instanceof Error ? err : message);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/**
 * Runs `fn` inside a new span (child of the active one) and ends the span when its promise
 * settles, failed when it rejects. Off, the span is the API's no-op one.
 */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  const parent = context.active();
  const span = tracer.startSpan(name, { kind, attributes }, parent);
  if (!span.isRecording()) return fn(span);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/**
 * Reads the iterable `make` returns inside `span`: the iterable is made and each `next()` runs
 * with `span` active, so work started by it (an agent offer, an HTTP request to a model server)
 * is the span's child, and the span ends when the iteration does (failed on a throw). When
 * `span` does not record (tracing off), the iterable is returned as it is: no wrapper, no cost.
 */
export function iterateInSpan<T>(
  span: Span,
  parent: Context,
  make: () => AsyncIterable<T>,
  onEnd?: (span: Span) => void,
): AsyncIterable<T> {
  if (!span.isRecording()) return make();
  const inner = iterateInContext(trace.setSpan(parent, span), make);
  return (async function* () {
    try {
      yield* inner;
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      onEnd?.(span);
      span.end();
    }
  })();
}

/**
 * Reads the iterable `make` returns with `active` as the context of its making and of each
 * `next()` (an async generator otherwise runs in its reader's context). The caller ends spans.
 */
export function iterateInContext<T>(
  active: Context,
  make: () => AsyncIterable<T>,
): AsyncIterable<T> {
  return (async function* () {
    const iterator = context.with(active, () => make()[Symbol.asyncIterator]());
    let done = false;
    try {
      while (true) {
        const next = await context.with(active, () => iterator.next());
        if (next.done) break;
        yield next.value;
      }
      done = true;
    } catch (err) {
      done = true;
      throw err;
    } finally {
      // The reader stopped early: let the inner iterable clean up too.
      if (!done) await iterator.return?.().catch(() => {});
    }
  })();
}

/** W3C trace-context fields of the active span, for a message that crosses a process. */
export interface TraceCarrier {
  /** W3C `traceparent`; empty when no span records. */
  traceparent: string;
  /** W3C `tracestate`; often empty. */
  tracestate: string;
}

/** The active span's `traceparent`/`tracestate` (empty strings when tracing is off). */
export function currentTraceCarrier(): TraceCarrier {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return { traceparent: carrier.traceparent ?? "", tracestate: carrier.tracestate ?? "" };
}

/** Adds the active span's `traceparent`/`tracestate` headers to `headers` (nothing when off). */
export function injectTraceHeaders(headers: Record<string, string>): Record<string, string> {
  propagation.inject(context.active(), headers);
  return headers;
}

/** The context a caller's `traceparent`/`tracestate` (headers or message fields) continue. */
export function extractTraceContext(
  carrier: Readonly<Record<string, string | string[] | undefined>>,
): Context {
  return propagation.extract(ROOT_CONTEXT, carrier);
}
