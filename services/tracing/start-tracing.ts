import { context, propagation, type TracerProvider, trace } from "@opentelemetry/api";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import { VOXGATE_VERSION } from "../version.js";
import type { TracingOptions } from "./tracing-settings.js";

/** A process's tracing, once started. */
export interface Tracing {
  /** Whether spans are recorded and exported. */
  readonly enabled: boolean;
  /** Exports the spans still buffered and stops; idempotent. Call last, after the servers closed. */
  shutdown(): Promise<void>;
}

/** Options of {@link startTracing} beyond the resolved settings (tests). */
export interface StartTracingExtras {
  /** Exporter to use in place of the configured one (tests: an in-memory exporter). */
  exporter?: SpanExporter;
  /**
   * Export each span as it ends instead of in batches (tests).
   * @default false
   */
  simpleProcessor?: boolean;
}

const off: Tracing = { enabled: false, shutdown: async () => {} };

/**
 * Starts OpenTelemetry tracing for this process: a tracer provider with the W3C trace-context
 * propagator and an AsyncLocalStorage context manager, exporting through OTLP/HTTP (or stderr).
 * With `options` undefined (tracing off) nothing is loaded or registered: the `@opentelemetry/api`
 * calls in voxgate then hit its no-op tracer, which records nothing and allocates next to nothing.
 * The SDK modules are imported only here, so a process without tracing never loads them.
 */
export async function startTracing(
  options: TracingOptions | undefined,
  extras: StartTracingExtras = {},
): Promise<Tracing> {
  if (!options && !extras.exporter) return off;
  const [sdk, { AsyncLocalStorageContextManager }, { W3CTraceContextPropagator }, resources] =
    await Promise.all([
      import("@opentelemetry/sdk-trace-base"),
      import("@opentelemetry/context-async-hooks"),
      import("@opentelemetry/core"),
      import("@opentelemetry/resources"),
    ]);
  const exporter = extras.exporter ?? (await createExporter(options as TracingOptions));
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) win over the default name.
  const resource = resources
    .resourceFromAttributes({
      "service.name": options?.defaultServiceName ?? "voxgate",
      "service.version": VOXGATE_VERSION,
    })
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const processor = extras.simpleProcessor
    ? new sdk.SimpleSpanProcessor(exporter)
    : new sdk.BatchSpanProcessor(exporter);
  const provider = new sdk.BasicTracerProvider({ resource, spanProcessors: [processor] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider as TracerProvider);
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    shutdown() {
      stopped ??= (async () => {
        await provider.shutdown().catch(() => {});
        trace.disable();
        propagation.disable();
        context.disable();
      })();
      return stopped;
    },
  };
}

async function createExporter(options: TracingOptions): Promise<SpanExporter> {
  if (options.exporter === "console") {
    const { ConsoleSpanExporter } = await import("@opentelemetry/sdk-trace-base");
    return new ConsoleSpanExporter();
  }
  // Both read OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT and _COMPRESSION.
  if (options.protocol === "http/json") {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    return new OTLPTraceExporter();
  }
  const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-proto");
  return new OTLPTraceExporter();
}
