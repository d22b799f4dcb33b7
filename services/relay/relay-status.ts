import { BackendKind, BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { ServerlessHealth } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import type { BackendRegistry, RegisteredBackend } from "../registry/index.js";

/** RunPod's `/health` body as the relay passed it on, or its error variant. */
export type RunPodHealthView =
  | {
      workers: Record<
        "ready" | "idle" | "initializing" | "running" | "throttled" | "unhealthy",
        number
      >;
      jobs: Record<
        "queued" | "inQueue" | "inProgress" | "completed" | "failed" | "retried" | "badfailed",
        number
      >;
    }
  | { error: string };

/** What the relay's status routes report about serverless endpoints. */
export interface RunPodStatus {
  /** A serverless backend is registered. */
  configured: boolean;
  /** A worker is ready, idle, initializing or running. */
  available: boolean;
  /** The first endpoint's health; undefined when none is configured. */
  health: RunPodHealthView | undefined;
  /** Workers idle or ready (warm-up's idempotency check). */
  workersReady: number;
}

/** Hard deadline of a RunPod health call from a status route, in ms (the relay's 5 s). */
export const kRelayStatusTimeoutMs = 5000;

/** Backends that count as the relay's "tunnel": agents that take work. */
export function readyAgents(registry: BackendRegistry): Readonly<RegisteredBackend>[] {
  return registry
    .list()
    .filter((b) => b.kind === BackendKind.AGENT && b.state === BackendState.READY);
}

/** Agents connected in any live state (the relay's `connected_clients`). */
export function connectedAgents(registry: BackendRegistry): Readonly<RegisteredBackend>[] {
  return registry
    .list()
    .filter((b) => b.kind === BackendKind.AGENT && b.state !== BackendState.REMOVED);
}

/** Model families (with sizes) of ready agents' engines, as `models_loaded`. */
export function modelsLoaded(registry: BackendRegistry): string[] {
  const models = new Set<string>();
  for (const backend of readyAgents(registry)) {
    for (const engine of backend.capabilities.engines) {
      const family = engine.model?.family || engine.id;
      models.add(engine.model?.size ? `${family}-${engine.model.size}` : family);
    }
  }
  return [...models].sort();
}

/** Maps voxgate's serverless health to the shape of RunPod's `/health` the relay passed on. */
export function runPodHealthView(h: ServerlessHealth): RunPodHealthView {
  return {
    workers: {
      ready: h.workersReady,
      idle: h.workersIdle,
      initializing: h.workersInitializing,
      running: h.workersRunning,
      throttled: h.workersThrottled,
      unhealthy: h.workersUnhealthy,
    },
    jobs: {
      // RunPod says inQueue; the relay contract and its frontend read queued: both are sent.
      queued: h.jobsInQueue,
      inQueue: h.jobsInQueue,
      inProgress: h.jobsInProgress,
      completed: h.jobsCompleted,
      failed: h.jobsFailed,
      retried: h.jobsRetried,
      // RunPod's API has no such count; 0 keeps the contract's shape.
      badfailed: 0,
    },
  };
}

/**
 * Asks the first serverless backend for its health (a live `GET /health` at RunPod), within
 * {@link kRelayStatusTimeoutMs}; with `warmUp`, it also starts a worker when none is warm.
 * Resolves the error variant instead of throwing when RunPod cannot be reached.
 */
export async function runPodStatus(
  registry: BackendRegistry,
  options: { warmUp?: boolean; signal?: AbortSignal } = {},
): Promise<RunPodStatus & { warmUpJob: string; failed: boolean }> {
  const serverless = registry.list().find((b) => b.kind === BackendKind.SERVERLESS);
  if (!serverless) {
    return {
      configured: false,
      available: false,
      health: undefined,
      workersReady: 0,
      warmUpJob: "",
      failed: false,
    };
  }
  try {
    const response = await serverless.client.health(
      { warmUp: options.warmUp ?? false },
      { timeoutMs: kRelayStatusTimeoutMs, ...(options.signal ? { signal: options.signal } : {}) },
    );
    const h = response.serverless;
    if (!h) throw new Error(`backend ${serverless.id} reported no serverless health`);
    const usable = h.workersReady + h.workersIdle + h.workersInitializing + h.workersRunning;
    return {
      configured: true,
      available: usable > 0,
      health: runPodHealthView(h),
      workersReady: h.workersIdle + h.workersReady,
      warmUpJob: h.warmUpJob,
      failed: false,
    };
  } catch (err) {
    return {
      configured: true,
      available: false,
      health: { error: (err as Error).message },
      workersReady: 0,
      warmUpJob: "",
      failed: true,
    };
  }
}
