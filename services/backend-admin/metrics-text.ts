import { BackendState, BreakerState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { RegisteredBackend } from "../registry/index.js";

/** Renders registry figures in the Prometheus text exposition format. */
export function renderMetrics(backends: readonly Readonly<RegisteredBackend>[]): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: Array<[string, number]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  const label = (b: Readonly<RegisteredBackend>) => `{backend="${b.id.replace(/["\\\n]/g, "_")}"}`;
  metric(
    "voxgate_backends",
    "gauge",
    "Backends by state.",
    Object.values(BackendState)
      .filter((v): v is BackendState => typeof v === "number" && v !== BackendState.UNSPECIFIED)
      .map((state) => [
        `{state="${BackendState[state].toLowerCase()}"}`,
        backends.filter((b) => b.state === state).length,
      ]),
  );
  metric(
    "voxgate_backend_in_flight",
    "gauge",
    "Calls running on a backend.",
    backends.map((b) => [label(b), b.inFlight]),
  );
  metric(
    "voxgate_backend_breaker_open",
    "gauge",
    "Whether a backend's circuit breaker keeps calls away (1 open or half-open, 0 closed).",
    backends.map((b) => [label(b), b.breaker === BreakerState.CLOSED ? 0 : 1]),
  );
  metric(
    "voxgate_backend_calls_total",
    "counter",
    "Calls routed to a backend.",
    backends.map((b) => [label(b), b.callsTotal]),
  );
  metric(
    "voxgate_backend_failures_total",
    "counter",
    "Calls a backend failed.",
    backends.map((b) => [label(b), b.failuresTotal]),
  );
  return `${lines.join("\n")}\n`;
}
