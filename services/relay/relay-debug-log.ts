import { BackendKind, BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { BackendRegistry } from "../registry/index.js";

/** One debug event, as the relay's `/api/v1/debug` and `/ws/debug` show them. */
export interface RelayDebugEvent {
  /** Seconds since the epoch (the relay's `t`). */
  t: number;
  /** Kind: `backend_added`, `backend_state`, `backend_breaker`, `backend_removed`, `call_start`, … */
  type: string;
  /** Further fields (never request bodies or tokens). */
  [key: string]: unknown;
}

/** A bounded log of recent events with live subscribers. */
export interface RelayDebugLog {
  /** Records an event. */
  record(type: string, fields?: Record<string, unknown>): void;
  /** The latest `limit` events, oldest first. */
  recent(limit: number): RelayDebugEvent[];
  /** Subscribes to new events; returns the unsubscribe function. */
  subscribe(listener: (event: RelayDebugEvent) => void): () => void;
  /** Stops watching the registry. */
  close(): void;
}

/** Options of {@link createRelayDebugLog}. */
export interface RelayDebugLogOptions {
  /** Registry whose changes are recorded. */
  registry: BackendRegistry;
  /** Events kept. @default 500 (as the relay) */
  capacity?: number;
}

/** Creates the log and starts recording registry changes into it. */
export function createRelayDebugLog(options: RelayDebugLogOptions): RelayDebugLog {
  const capacity = options.capacity ?? 500;
  const events: RelayDebugEvent[] = [];
  const listeners = new Set<(event: RelayDebugEvent) => void>();
  const record = (type: string, fields: Record<string, unknown> = {}) => {
    const event: RelayDebugEvent = { ...fields, t: Date.now() / 1000, type };
    events.push(event);
    if (events.length > capacity) events.splice(0, events.length - capacity);
    for (const listener of listeners) listener(event);
  };
  const unwatch = options.registry.watch((event) => {
    record(`backend_${event.change}`, {
      backend: event.backend.id,
      kind: BackendKind[event.backend.kind]?.toLowerCase() ?? "unknown",
      state: BackendState[event.backend.state]?.toLowerCase() ?? "unknown",
      reason: event.reason,
    });
  });
  return {
    record,
    recent: (limit) => events.slice(-limit),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      unwatch();
      listeners.clear();
    },
  };
}
