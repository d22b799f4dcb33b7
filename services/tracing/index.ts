export { traceHttpRequest } from "./http-server-span.js";
export {
  currentTraceCarrier,
  extractTraceContext,
  failSpan,
  injectTraceHeaders,
  inSpan,
  iterateInSpan,
  SpanKind,
  type TraceCarrier,
  tracer,
} from "./spans.js";
export { type StartTracingExtras, startTracing, type Tracing } from "./start-tracing.js";
export { createTracingInterceptor } from "./tracing-interceptor.js";
export {
  type OtlpProtocol,
  TRACING_ENV,
  type TraceExporterKind,
  type TracingOptions,
  tracingOptionsFromEnv,
} from "./tracing-settings.js";
