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
  const gpus = backends.flatMap((b) =>
    (b.load?.gpus ?? []).map((g) => ({
      labels: `{backend="${b.id.replace(/["\\\n]/g, "_")}",gpu="${g.index}",name="${g.name.replace(/["\\\n]/g, "_")}"}`,
      g,
    })),
  );
  const gpuMetric = (
    name: string,
    help: string,
    value: (g: (typeof gpus)[number]["g"]) => number | undefined,
  ) =>
    metric(
      name,
      "gauge",
      help,
      gpus.flatMap(({ labels, g }) => {
        const v = value(g);
        return v === undefined ? [] : [[labels, v] as [string, number]];
      }),
    );
  gpuMetric(
    "voxgate_gpu_utilization_percent",
    "GPU utilisation reported by a backend's host.",
    (g) => g.utilizationPercent,
  );
  gpuMetric(
    "voxgate_gpu_memory_used_mib",
    "GPU memory in use on a backend's host, MiB.",
    (g) => g.memoryUsedMib,
  );
  gpuMetric(
    "voxgate_gpu_memory_total_mib",
    "GPU memory of a backend's host, MiB.",
    (g) => g.memoryTotalMib,
  );
  gpuMetric(
    "voxgate_gpu_power_watts",
    "GPU power draw on a backend's host, W.",
    (g) => g.powerWatts,
  );
  gpuMetric(
    "voxgate_gpu_temperature_celsius",
    "GPU temperature on a backend's host.",
    (g) => g.temperatureC,
  );
  return `${lines.join("\n")}\n`;
}
