import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { BackendKind, BackendState, BreakerState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { GpuStats } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import type { JobFigures } from "../jobs/job-system.js";
import type { BackendRegistry } from "../registry/index.js";

/** One finished public call, as the access log sees it. */
export interface CallObservation {
  /** Fully-qualified service, e.g. `voxgate.v1.TtsService`. */
  service: string;
  /** Method name, e.g. `StreamSynthesize`. */
  method: string;
  /** Wire protocol: `grpc`, `grpc-web`, `connect`, or `in-process` (REST, OpenAI and other frontends). */
  protocol: string;
  /** Outcome code name (`ok`, `NotFound`, …). */
  code: string;
  /** Whole call, in seconds. */
  seconds: number;
  /** Backend that served it, when one did. */
  backend: string | undefined;
  /** Bytes of audio (HttpBody data) sent. */
  bytes: number;
  /** Time to the first audio byte, in seconds, when audio left. */
  firstAudioSeconds: number | undefined;
  /** Time the call waited for a backend slot (admission queue and bounces), in seconds, when it got one. */
  queueWaitSeconds: number | undefined;
}

/** The gateway's Prometheus metrics. */
export interface GatewayMetrics {
  /** Records a finished public call. */
  observeCall(call: CallObservation): void;
  /** Records a clone prompt a call to an agent referred to: a cache hit, or bytes sent. */
  observePromptDelivery(delivery: { bytes?: number }): void;
  /** Records one webhook call's outcome. */
  observeWebhookDelivery(outcome: "delivered" | "retry" | "given_up"): void;
  /** The metrics in the Prometheus text exposition format. */
  render(): Promise<string>;
  /** Content type of {@link render}'s text. */
  readonly contentType: string;
  /** Stops watching the backend registry. */
  close(): void;
}

/** Options of {@link createGatewayMetrics}. */
export interface GatewayMetricsOptions {
  /** Backends, read at every scrape. */
  registry: BackendRegistry;
  /**
   * Whether to add Node process metrics (CPU, memory, event loop lag, handles). Several gateways
   * in one process (tests) would otherwise register them more than once.
   * @default true
   */
  processMetrics?: boolean;
  /** Jobs by kind and state, read at every scrape; absent: no job metrics. */
  jobs?: { figures(): Promise<JobFigures | undefined> };
  /**
   * Longest a scrape waits for the job figures, in ms; a database slower than this leaves them
   * out of that scrape rather than holding the scraper.
   * @default 2000
   */
  jobFiguresTimeoutMs?: number;
}

// Seconds: from a fast first byte (a few ms) to long syntheses (minutes).
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180];

/**
 * Creates the gateway's metrics on their own prom-client registry: calls by service, method,
 * protocol and code; call duration and time to first audio by method and backend; audio bytes
 * relayed; admission queue depth and outcomes; backends by state, in-flight calls, breaker
 * transitions, agent sessions, GPU figures agents report; Node process figures. Names and units follow Prometheus conventions (`_seconds`, `_bytes`, `_total`).
 */
export function createGatewayMetrics(options: GatewayMetricsOptions): GatewayMetrics {
  const { registry } = options;
  const prom = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: prom, prefix: "voxgate_" });

  const calls = new Counter({
    name: "voxgate_calls_total",
    help: "Public calls by service, method, protocol and outcome code.",
    labelNames: ["service", "method", "protocol", "code"] as const,
    registers: [prom],
  });
  const duration = new Histogram({
    name: "voxgate_call_duration_seconds",
    help: "Duration of public calls, by method and serving backend.",
    labelNames: ["method", "backend"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [prom],
  });
  const firstAudio = new Histogram({
    name: "voxgate_first_audio_seconds",
    help: "Time from a call's start to its first audio byte, by method and serving backend.",
    labelNames: ["method", "backend"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [prom],
  });
  const queueWait = new Histogram({
    name: "voxgate_queue_wait_seconds",
    help: "Time calls that got a backend slot waited for it (0 when one was free), by method.",
    labelNames: ["method"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [prom],
  });
  const relayed = new Counter({
    name: "voxgate_relayed_bytes_total",
    help: "Audio bytes sent to callers, by method.",
    labelNames: ["method"] as const,
    registers: [prom],
  });
  const breakerTransitions = new Counter({
    name: "voxgate_breaker_transitions_total",
    help: "Circuit breaker changes, by the state entered.",
    labelNames: ["state"] as const,
    registers: [prom],
  });
  const unwatch = registry.watch((event) => {
    if (event.change === "breaker") {
      breakerTransitions.inc({ state: BreakerState[event.backend.breaker].toLowerCase() });
    }
  });

  new Gauge({
    name: "voxgate_backends",
    help: "Backends by state.",
    labelNames: ["state"] as const,
    registers: [prom],
    collect() {
      this.reset();
      for (const b of registry.list()) this.inc({ state: BackendState[b.state].toLowerCase() });
    },
  });
  new Gauge({
    name: "voxgate_agent_sessions",
    help: "Agents connected to this gateway (one control stream each).",
    registers: [prom],
    collect() {
      this.set(registry.list().filter((b) => b.kind === BackendKind.AGENT).length);
    },
  });
  new Gauge({
    name: "voxgate_backend_in_flight",
    help: "Calls running on a backend.",
    labelNames: ["backend"] as const,
    registers: [prom],
    collect() {
      this.reset();
      for (const b of registry.list()) this.set({ backend: b.id }, b.inFlight);
    },
  });
  new Gauge({
    name: "voxgate_backend_breaker_open",
    help: "Whether a backend's circuit breaker keeps calls away (1 open or half-open, 0 closed).",
    labelNames: ["backend"] as const,
    registers: [prom],
    collect() {
      this.reset();
      for (const b of registry.list()) {
        this.set({ backend: b.id }, b.breaker === BreakerState.CLOSED ? 0 : 1);
      }
    },
  });
  new Counter({
    name: "voxgate_backend_calls_total",
    help: "Calls routed to a backend (since it connected to this gateway).",
    labelNames: ["backend"] as const,
    registers: [prom],
    collect() {
      this.reset();
      for (const b of registry.list()) this.inc({ backend: b.id }, b.callsTotal);
    },
  });
  new Counter({
    name: "voxgate_backend_failures_total",
    help: "Calls a backend failed (since it connected to this gateway).",
    labelNames: ["backend"] as const,
    registers: [prom],
    collect() {
      this.reset();
      for (const b of registry.list()) this.inc({ backend: b.id }, b.failuresTotal);
    },
  });
  const gpuGauge = (name: string, help: string, value: (gpu: GpuStats) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ["backend", "gpu", "name"] as const,
      registers: [prom],
      collect() {
        this.reset();
        for (const b of registry.list()) {
          for (const gpu of b.load?.gpus ?? []) {
            const figure = value(gpu);
            if (figure === undefined) continue;
            this.set({ backend: b.id, gpu: String(gpu.index), name: gpu.name }, figure);
          }
        }
      },
    });
  gpuGauge("voxgate_gpu_utilization_ratio", "GPU utilisation an agent reports, 0..1.", (g) =>
    g.utilizationPercent === undefined ? undefined : g.utilizationPercent / 100,
  );
  gpuGauge("voxgate_gpu_memory_used_bytes", "GPU memory in use an agent reports.", (g) =>
    mib(g.memoryUsedMib),
  );
  gpuGauge("voxgate_gpu_memory_total_bytes", "GPU memory an agent reports.", (g) =>
    mib(g.memoryTotalMib),
  );
  const queueFigure = (
    name: string,
    help: string,
    pick: (s: QueueFigures) => number,
    type: "gauge" | "counter",
  ) => {
    const config = {
      name,
      help,
      registers: [prom],
      collect(this: Gauge | Counter) {
        const stats = registry.admissionStats();
        this.reset();
        if (!stats) return;
        if (this instanceof Gauge) this.set(pick(stats));
        else this.inc(pick(stats));
      },
    };
    return type === "gauge" ? new Gauge(config) : new Counter(config);
  };
  queueFigure(
    "voxgate_queue_depth",
    "Calls waiting in the admission queue now.",
    (s) => s.queued,
    "gauge",
  );
  queueFigure(
    "voxgate_queue_service_seconds",
    "Recent service time of a call the queue expects (moving average), for Retry-After.",
    (s) => s.serviceMs / 1000,
    "gauge",
  );
  queueFigure(
    "voxgate_queue_admitted_total",
    "Calls that waited in the queue and got a slot.",
    (s) => s.admittedTotal,
    "counter",
  );
  queueFigure(
    "voxgate_queue_refused_total",
    "Calls refused: queue full or expected wait past the deadline.",
    (s) => s.refusedTotal,
    "counter",
  );
  queueFigure(
    "voxgate_queue_expired_total",
    "Calls whose wait ended by deadline, longest wait or cancel.",
    (s) => s.expiredTotal,
    "counter",
  );

  const promptDeliveries = new Counter({
    name: "voxgate_prompt_deliveries_total",
    help: "Clone prompts calls to agents referred to, by outcome: hit (the agent had it cached) or miss (the gateway sent it).",
    labelNames: ["outcome"] as const,
    registers: [prom],
  });
  const promptBytes = new Counter({
    name: "voxgate_prompt_delivered_bytes_total",
    help: "Clone prompt bytes the gateway sent to agents (cache misses).",
    registers: [prom],
  });
  const webhookDeliveries = new Counter({
    name: "voxgate_webhook_deliveries_total",
    help: "Webhook calls by outcome: delivered, retry (failed, tried again later) or given_up.",
    labelNames: ["outcome"] as const,
    registers: [prom],
  });
  const jobs = options.jobs;
  if (jobs) {
    // One read of the database per scrape serves both job gauges.
    const timeoutMs = options.jobFiguresTimeoutMs ?? 2000;
    let pending: Promise<JobFigures | undefined> | undefined;
    const figures = () => {
      pending ??= withTimeout(jobs.figures(), timeoutMs)
        .catch(() => undefined)
        .finally(() => {
          pending = undefined;
        });
      return pending;
    };
    new Gauge({
      name: "voxgate_jobs",
      help: "Jobs in the database (all replicas) by kind and state.",
      labelNames: ["kind", "state"] as const,
      registers: [prom],
      async collect() {
        const now = await figures();
        this.reset();
        for (const row of now?.counts ?? []) {
          this.set({ kind: row.kind, state: row.state.toLowerCase() }, row.jobs);
        }
      },
    });
    new Gauge({
      name: "voxgate_job_queue_age_seconds",
      help: "How long the oldest runnable queued job of a kind has waited since it became due.",
      labelNames: ["kind"] as const,
      registers: [prom],
      async collect() {
        const now = await figures();
        this.reset();
        for (const row of now?.oldestQueuedSeconds ?? []) this.set({ kind: row.kind }, row.seconds);
      },
    });
  }

  return {
    contentType: prom.contentType,
    observePromptDelivery(delivery) {
      if (delivery.bytes === undefined) {
        promptDeliveries.inc({ outcome: "hit" });
        return;
      }
      promptDeliveries.inc({ outcome: "miss" });
      promptBytes.inc(delivery.bytes);
    },
    observeWebhookDelivery(outcome) {
      webhookDeliveries.inc({ outcome });
    },
    observeCall(call) {
      const backend = call.backend ?? "";
      calls.inc({
        service: call.service,
        method: call.method,
        protocol: call.protocol,
        code: call.code,
      });
      duration.observe({ method: call.method, backend }, call.seconds);
      if (call.firstAudioSeconds !== undefined) {
        firstAudio.observe({ method: call.method, backend }, call.firstAudioSeconds);
      }
      if (call.queueWaitSeconds !== undefined) {
        queueWait.observe({ method: call.method }, call.queueWaitSeconds);
      }
      if (call.bytes > 0) relayed.inc({ method: call.method }, call.bytes);
    },
    render: () => prom.metrics(),
    close: unwatch,
  };
}

/** `promise`, or undefined after `ms` (the timer never holds the process). */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** MiB as bytes; undefined stays undefined (a figure the host does not report). */
const mib = (value: number | undefined) => (value === undefined ? undefined : value * 1024 * 1024);

/** The admission queue figures the metrics read. */
interface QueueFigures {
  queued: number;
  admittedTotal: number;
  refusedTotal: number;
  expiredTotal: number;
  serviceMs: number;
}
