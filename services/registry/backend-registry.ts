import { EventEmitter } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { LoadReport } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import type { BackendCriteria, BackendRegistration, RegisteredBackend } from "./backend.js";

/** A registry change, for watchers (admin API, metrics). */
export interface BackendEvent {
  /** The backend after the change (a snapshot). */
  backend: Readonly<RegisteredBackend>;
  /** Why it changed, for people. */
  reason: string;
  /** When. */
  time: Date;
}

/** How a leased call ended, from the backend's point of view. */
export type CallOutcome = "ok" | "backend-failure" | "caller-gone";

/** A backend reserved for one call; release it exactly once when the call ends. */
export interface BackendLease {
  /** The chosen backend. */
  readonly backend: Readonly<RegisteredBackend>;
  /** Ends the lease; later calls are no-ops. */
  release(outcome: CallOutcome, error?: string): void;
}

/** Options of {@link createBackendRegistry}. */
export interface BackendRegistryOptions {
  /** Logger for registry changes. */
  log: Logger;
}

/** The set of backends and the routing decision over them. */
export interface BackendRegistry {
  /** Adds (or replaces, for a reconnecting agent) a backend in READY state. */
  add(registration: BackendRegistration, reason: string): void;
  /** Removes a backend; in-flight leases stay valid until released. */
  remove(id: string, reason: string): void;
  /** Changes a backend's state (e.g. DRAINING); unknown ids are ignored. */
  setState(id: string, state: BackendState, reason: string): void;
  /** Records a backend's own load report and marks it seen. */
  reportLoad(id: string, load: LoadReport): void;
  /** Returns a backend by id. */
  get(id: string): Readonly<RegisteredBackend> | undefined;
  /** Returns every backend, sorted by id. */
  list(): Readonly<RegisteredBackend>[];
  /**
   * Reserves the best backend for a call: capability and health filter, then priority, then least
   * loaded (in-flight / slots).
   *
   * @throws ConnectError UNAVAILABLE naming why nothing fits (none connected, none with the
   *   feature or engine, all busy or draining).
   */
  lease(criteria: BackendCriteria): BackendLease;
  /** Subscribes to changes; returns the unsubscribe function. */
  watch(listener: (event: BackendEvent) => void): () => void;
}

/** Creates an empty registry. */
export function createBackendRegistry(options: BackendRegistryOptions): BackendRegistry {
  const log = options.log.child({ component: "registry" });
  const backends = new Map<string, RegisteredBackend>();
  const events = new EventEmitter();
  // Each watcher is one listener; admin streams can be many.
  events.setMaxListeners(0);

  const emit = (backend: RegisteredBackend, reason: string) => {
    const event: BackendEvent = { backend: { ...backend }, reason, time: new Date() };
    events.emit("change", event);
  };

  const slotsOf = (b: RegisteredBackend) => Math.max(1, b.capabilities.slots);

  const offersFeature = (b: RegisteredBackend, criteria: BackendCriteria) =>
    b.capabilities.engines.some(
      (engine) =>
        engine.features.includes(criteria.feature) &&
        (!criteria.engine || engine.id === criteria.engine) &&
        (!criteria.modelFamily || engine.model?.family === criteria.modelFamily),
    );

  return {
    add(registration, reason) {
      const now = new Date();
      const backend: RegisteredBackend = {
        ...registration,
        state: BackendState.READY,
        inFlight: backends.get(registration.id)?.inFlight ?? 0,
        load: undefined,
        lastError: "",
        connectedAt: now,
        lastSeenAt: now,
        callsTotal: backends.get(registration.id)?.callsTotal ?? 0,
        failuresTotal: backends.get(registration.id)?.failuresTotal ?? 0,
      };
      backends.set(backend.id, backend);
      log.info({ backend: backend.id, address: backend.address, reason }, "backend added");
      emit(backend, reason);
    },
    remove(id, reason) {
      const backend = backends.get(id);
      if (!backend) return;
      backends.delete(id);
      backend.state = BackendState.REMOVED;
      log.info({ backend: id, reason }, "backend removed");
      emit(backend, reason);
    },
    setState(id, state, reason) {
      const backend = backends.get(id);
      if (!backend || backend.state === state) return;
      backend.state = state;
      log.info({ backend: id, state: BackendState[state], reason }, "backend state changed");
      emit(backend, reason);
    },
    reportLoad(id, load) {
      const backend = backends.get(id);
      if (!backend) return;
      backend.load = load;
      backend.lastSeenAt = new Date();
    },
    get: (id) => backends.get(id),
    list: () => [...backends.values()].sort((a, b) => a.id.localeCompare(b.id)),
    lease(criteria) {
      const all = [...backends.values()].filter((b) => !criteria.exclude?.has(b.id));
      const capable = all.filter((b) => offersFeature(b, criteria));
      const ready = capable.filter((b) => b.state === BackendState.READY);
      const free = ready.filter((b) => b.inFlight < slotsOf(b));
      const chosen = free.sort(
        (a, b) => a.priority - b.priority || a.inFlight / slotsOf(a) - b.inFlight / slotsOf(b),
      )[0];
      if (!chosen) {
        throw new ConnectError(
          whyNothingFits(all.length, capable.length, ready.length, criteria),
          Code.Unavailable,
        );
      }
      chosen.inFlight++;
      chosen.callsTotal++;
      let released = false;
      return {
        backend: chosen,
        release(outcome, error) {
          if (released) return;
          released = true;
          // An agent that reconnected mid-call is a new record carrying this call in its count.
          const current = backends.get(chosen.id) ?? chosen;
          current.inFlight = Math.max(0, current.inFlight - 1);
          if (outcome === "backend-failure") {
            current.failuresTotal++;
            current.lastError = error ?? "call failed";
          } else if (outcome === "ok") {
            current.lastSeenAt = new Date();
          }
        },
      };
    },
    watch(listener) {
      events.on("change", listener);
      return () => events.off("change", listener);
    },
  };
}

function whyNothingFits(
  total: number,
  capable: number,
  ready: number,
  criteria: BackendCriteria,
): string {
  const wanted = [
    Feature[criteria.feature].toLowerCase(),
    criteria.engine ? `engine "${criteria.engine}"` : "",
    criteria.modelFamily ? `model "${criteria.modelFamily}"` : "",
  ]
    .filter(Boolean)
    .join(", ");
  if (total === 0) {
    return criteria.exclude?.size
      ? `no other backend is connected (tried ${[...criteria.exclude].join(", ")})`
      : "no backend is connected: start an agent (voxgate agent --gateway HOST:PORT) or check its token";
  }
  if (capable === 0) return `no connected backend offers ${wanted}`;
  if (ready === 0) return `no backend offering ${wanted} is ready (all draining or unhealthy)`;
  return `every backend offering ${wanted} is busy (all slots in use); retry shortly`;
}
