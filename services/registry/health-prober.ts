import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { BackendRegistry } from "./backend-registry.js";

/** Options of {@link createHealthProber}. */
export interface HealthProberOptions {
  /** Registry whose backends are probed and told the results. */
  registry: BackendRegistry;
  /** Logger. */
  log: Logger;
  /** Interval between probes of one backend, in ms (setting probeIntervalMs). */
  intervalMs: number;
  /** Deadline of one probe, in ms; a probe that takes longer failed (setting probeTimeoutMs). */
  timeoutMs: number;
}

/** Probes every backend's `GPUBackendService.Health` on an interval. */
export interface HealthProber {
  /** Starts probing: every backend now, new ones as they join, all on the interval. Idempotent. */
  start(): void;
  /** Probes every backend once and resolves when all answered or timed out. */
  probeAll(): Promise<void>;
  /** Stops probing and waits for running probes to end. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Creates the active prober: it calls `Health` with a deadline on every backend, whatever its
 * kind (agent, serverless, in-process), and reports each result to the registry, which moves the
 * backend between PENDING, READY and UNHEALTHY. A backend whose previous probe is still running is
 * skipped, so a frozen backend never piles up probes.
 */
export function createHealthProber(options: HealthProberOptions): HealthProber {
  const { registry, intervalMs, timeoutMs } = options;
  const log = options.log.child({ component: "health-prober" });
  const running = new Map<string, Promise<void>>();
  const stopped = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;

  const probe = (id: string): Promise<void> => {
    const existing = running.get(id);
    if (existing) return existing;
    const backend = registry.get(id);
    if (!backend || stopped.signal.aborted) return Promise.resolve();
    const { client } = backend;
    const done = (async () => {
      try {
        const response = await client.health({}, { timeoutMs, signal: stopped.signal });
        // The backend may have been replaced (an agent reconnected) while the probe ran.
        if (registry.get(id)?.client !== client) return;
        registry.reportProbe(id, { ok: true, response });
      } catch (err) {
        if (stopped.signal.aborted || registry.get(id)?.client !== client) return;
        const error = ConnectError.from(err);
        log.debug({ backend: id, err: error.rawMessage }, "health probe failed");
        registry.reportProbe(id, {
          ok: false,
          error: error.rawMessage,
          timedOut: error.code === Code.DeadlineExceeded,
        });
      }
    })().finally(() => running.delete(id));
    running.set(id, done);
    return done;
  };

  const probeAll = async () => {
    await Promise.all(registry.list().map((backend) => probe(backend.id)));
  };

  let stopping: Promise<void> | undefined;
  return {
    start() {
      if (timer || stopped.signal.aborted) return;
      unsubscribe = registry.watch((event) => {
        if (event.change === "added") void probe(event.backend.id);
      });
      timer = setInterval(() => void probeAll(), intervalMs);
      timer.unref();
      void probeAll();
    },
    probeAll,
    stop() {
      stopping ??= (async () => {
        stopped.abort(new Error("prober stopped"));
        clearInterval(timer);
        unsubscribe?.();
        await Promise.allSettled([...running.values()]);
      })();
      return stopping;
    },
  };
}
