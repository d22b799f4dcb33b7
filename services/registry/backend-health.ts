import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";

/**
 * Health of a backend, apart from draining:
 * - `pending`: registered, not yet proven alive (no heartbeat or successful probe yet); no work;
 * - `ready`: proven alive; takes work;
 * - `unhealthy`: failed probes or lost its link; no work until a probe succeeds again.
 * Removal ends the machine (the registry forgets the backend).
 */
export type BackendHealth = "pending" | "ready" | "unhealthy";

/** What moves a backend through {@link BackendHealth}. */
export type HealthSignal =
  /** A heartbeat: proves the link is alive (only promotes `pending`). */
  | { kind: "heartbeat" }
  /** A successful active probe. */
  | { kind: "probe-ok" }
  /** A failed probe (error, timeout, NOT_SERVING). */
  | { kind: "probe-failed"; error: string }
  /** The backend's link is gone (stream ended, heartbeats stopped, keepalive failed). */
  | { kind: "lost"; error: string };

/** Options of {@link createHealthMachine}. */
export interface HealthMachineOptions {
  /**
   * Consecutive failed probes that make a `ready` or `pending` backend `unhealthy` (setting
   * probeFailureThreshold).
   */
  probeFailureThreshold: number;
}

/** One backend's health state machine. */
export interface HealthMachine {
  /** Current health. */
  readonly health: BackendHealth;
  /** Applies a signal; returns the new health when it changed, else undefined. */
  apply(signal: HealthSignal): BackendHealth | undefined;
}

/** Creates a machine in `pending`. */
export function createHealthMachine(options: HealthMachineOptions): HealthMachine {
  const threshold = Math.max(1, options.probeFailureThreshold);
  let health: BackendHealth = "pending";
  let probeFailures = 0;
  const move = (next: BackendHealth) => {
    if (next === health) return undefined;
    // Failures counted before a backend proved itself say nothing about it afterwards.
    if (next === "ready") probeFailures = 0;
    health = next;
    return next;
  };
  return {
    get health() {
      return health;
    },
    apply(signal) {
      switch (signal.kind) {
        case "heartbeat":
          // A heartbeat shows the link lives, not that calls succeed: it never clears `unhealthy`.
          return health === "pending" ? move("ready") : undefined;
        case "probe-ok":
          probeFailures = 0;
          return move("ready");
        case "probe-failed":
          probeFailures++;
          return probeFailures >= threshold ? move("unhealthy") : undefined;
        case "lost":
          return move("unhealthy");
      }
    },
  };
}

/** The state the admin API shows for a health and a drain flag. */
export function visibleState(health: BackendHealth, draining: boolean): BackendState {
  if (draining) return BackendState.DRAINING;
  switch (health) {
    case "pending":
      return BackendState.PENDING;
    case "ready":
      return BackendState.READY;
    case "unhealthy":
      return BackendState.UNHEALTHY;
  }
}
