/** Where finished spans go: an OTLP/HTTP endpoint, or stderr (for a quick look). */
export type TraceExporterKind = "otlp" | "console";

/** Wire format of OTLP/HTTP export. */
export type OtlpProtocol = "http/protobuf" | "http/json";

/** Resolved tracing options of one process; `undefined` from {@link tracingOptionsFromEnv} = off. */
export interface TracingOptions {
  /** Where spans go. */
  exporter: TraceExporterKind;
  /** OTLP wire format. @default "http/protobuf" */
  protocol: OtlpProtocol;
  /** `service.name` of the spans when `OTEL_SERVICE_NAME` is not set, e.g. `voxgate-gateway`. */
  defaultServiceName: string;
}

/** The standard variables that decide whether and where a process exports spans. */
export const TRACING_ENV = [
  "OTEL_SDK_DISABLED",
  "OTEL_TRACES_EXPORTER",
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_EXPORTER_OTLP_PROTOCOL",
  "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
] as const;

/**
 * Reads the standard OpenTelemetry variables. Tracing is OFF unless one of them asks for it:
 * `OTEL_TRACES_EXPORTER=otlp|console`, or an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`,
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. `OTEL_SDK_DISABLED=true` or
 * `OTEL_TRACES_EXPORTER=none` turn it off whatever else is set. (The OpenTelemetry default
 * exporter is `otlp`; voxgate departs from it so a gateway never sends spans nobody asked for.)
 * Endpoint, headers, timeout, compression, sampler (`OTEL_TRACES_SAMPLER`), batching
 * (`OTEL_BSP_*`) and `OTEL_SERVICE_NAME`/`OTEL_RESOURCE_ATTRIBUTES` are read by the
 * OpenTelemetry SDK itself.
 *
 * @throws Error naming the variable and the accepted values when a value is not understood.
 */
export function tracingOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  defaultServiceName: string,
): TracingOptions | undefined {
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") return undefined;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? "")
    .split(",")
    .map((e) => e.trim().toLowerCase())
    .filter(Boolean);
  if (exporters.length > 1) {
    throw new Error(
      `OTEL_TRACES_EXPORTER: voxgate exports to one place; got "${env.OTEL_TRACES_EXPORTER}" (use otlp, console or none)`,
    );
  }
  const named = exporters[0];
  if (named !== undefined && !["otlp", "console", "none"].includes(named)) {
    throw new Error(
      `OTEL_TRACES_EXPORTER must be otlp, console or none (got "${env.OTEL_TRACES_EXPORTER}")`,
    );
  }
  if (named === "none") return undefined;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (named === undefined && !endpoint) return undefined;
  const protocolVar = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
    ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
    : "OTEL_EXPORTER_OTLP_PROTOCOL";
  const protocol = (env[protocolVar] || "http/protobuf").trim();
  if (protocol !== "http/protobuf" && protocol !== "http/json") {
    throw new Error(
      `${protocolVar} must be http/protobuf or http/json (got "${protocol}"; OTLP over gRPC is not built in: point it at a collector's HTTP port, 4318)`,
    );
  }
  return { exporter: named === "console" ? "console" : "otlp", protocol, defaultServiceName };
}
