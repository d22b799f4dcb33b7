import { EventEmitter } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { context, trace } from "@opentelemetry/api";
import type { Logger } from "pino";
import { BackendKind, BackendState, BreakerState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import {
  type HealthResponse,
  type LoadReport,
  ServingState,
} from "../../gen/voxgate/v1/gpu_backend_pb.js";
import type { AdmissionQueue, AdmissionStats } from "../admission/admission-queue.js";
import { failSpan, iterateInContext, SpanKind, tracer } from "../tracing/spans.js";
import type { BackendCriteria, BackendRegistration, RegisteredBackend } from "./backend.js";
import { isBackendFault } from "./backend-fault.js";
import {
  createHealthMachine,
  type HealthMachine,
  type HealthMachineOptions,
  type HealthSignal,
  visibleState,
} from "./backend-health.js";
import {
  type BreakerTicket,
  type CircuitBreaker,
  type CircuitBreakerOptions,
  createCircuitBreaker,
} from "./circuit-breaker.js";

/** What kind of change a {@link BackendEvent} reports. */
export type BackendChange = "added" | "state" | "breaker" | "removed";

/** A registry change, for watchers (admin API, metrics, the prober). */
export interface BackendEvent {
  /** The backend after the change (a snapshot). */
  backend: Readonly<RegisteredBackend>;
  /** Kind of change. */
  change: BackendChange;
  /** Why it changed, for people. */
  reason: string;
  /** When. */
  time: Date;
}

/**
 * How a leased call ended, from the backend's point of view: `backend-busy` (it had no free slot
 * after all) moves the call on without counting against the backend.
 */
export type CallOutcome = "ok" | "backend-failure" | "backend-busy" | "caller-gone";

/** A backend reserved for one call; release it exactly once when the call ends. */
export interface BackendLease {
  /** The chosen backend. */
  readonly backend: Readonly<RegisteredBackend>;
  /** Ends the lease; later calls are no-ops. */
  release(outcome: CallOutcome, error?: string): void;
}

/** The result of one active probe, for {@link BackendRegistry.reportProbe}. */
export type ProbeResult =
  | { ok: true; response: HealthResponse }
  | {
      ok: false;
      error: string;
      /**
       * The probe ran out of time (no answer, no error). An agent whose session is still open is
       * alive by definition (its session watches the link and ends when the agent goes silent),
       * so for agents this means busy, not failing, and is not counted.
       */
      timedOut?: boolean;
    };

/** One try of a call on one backend, handed to the function {@link BackendRegistry.call} runs. */
export interface BackendAttempt {
  /** The backend reserved for this try. */
  readonly backend: Readonly<RegisteredBackend>;
  /** 1 for the first backend tried, 2 for the second, … */
  readonly attempt: number;
  /** Aborts when the caller goes away or the overall deadline passes. */
  readonly signal: AbortSignal;
  /** What is left of the overall deadline, in ms; undefined when the call has none. */
  readonly timeoutMs: number | undefined;
}

/** Options of one {@link BackendRegistry.call}. */
export interface BackendCallOptions {
  /** The caller's signal (client gone, deadline passed). */
  signal?: AbortSignal;
  /** Overall deadline of every attempt together, in ms from now. */
  timeoutMs?: number;
  /** Called once, right before the first item reaches the caller, with the serving backend. */
  onFirstItem?(backend: Readonly<RegisteredBackend>, attempts: number): void;
  /**
   * Whose turn this call takes in the admission queue (the token name): calls of one key wait
   * behind each other, keys take turns. @default "" (one shared line)
   */
  queueKey?: string;
  /**
   * Called when the call got a slot (again when a slot taken after all sent it back to wait), with
   * how long it has waited for one in all, queue and bounces, in ms (0: none).
   */
  onAdmitted?(waitedMs: number): void;
}

/**
 * The gateway settings that shape routing and backend health, by setting name (README: Settings).
 */
export interface RoutingSettings {
  /** Consecutive failed calls that open a backend's breaker. */
  breakerFailureThreshold: number;
  /** Time an open breaker refuses calls before a trial call, in ms. */
  breakerCooldownMs: number;
  /** Successful trial calls that close a half-open breaker. */
  breakerHalfOpenSuccesses: number;
  /** Share of failed calls among the last `breakerWindowCalls` that opens a breaker, in %. */
  breakerFailurePercent: number;
  /** Recent calls per backend the failure share is taken over. */
  breakerWindowCalls: number;
  /** Failed probes in a row that make a backend unhealthy. */
  probeFailureThreshold: number;
  /** Most backends one call tries. */
  maxAttempts: number;
}

/** The breaker, health and retry options of {@link createBackendRegistry} from the settings. */
export function routingOptionsFromSettings(
  settings: RoutingSettings,
): Pick<BackendRegistryOptions, "breaker" | "health" | "maxAttempts"> {
  return {
    breaker: {
      failureThreshold: settings.breakerFailureThreshold,
      cooldownMs: settings.breakerCooldownMs,
      halfOpenSuccesses: settings.breakerHalfOpenSuccesses,
      failureRatio: settings.breakerFailurePercent / 100,
      windowCalls: settings.breakerWindowCalls,
    },
    health: { probeFailureThreshold: settings.probeFailureThreshold },
    maxAttempts: settings.maxAttempts,
  };
}

/** Options of {@link createBackendRegistry}. */
export interface BackendRegistryOptions {
  /** Logger for registry changes. */
  log: Logger;
  /** Circuit breaker of each backend. */
  breaker: Omit<CircuitBreakerOptions, "now">;
  /** Health state machine of each backend. */
  health: HealthMachineOptions;
  /** Most backends one call tries before it gives up (setting maxAttempts). */
  maxAttempts: number;
  /** Clock, in ms (breaker cooldowns). @default Date.now */
  now?: () => number;
  /**
   * How long a backend that answered "no free slot" counts as busy, in ms, unless a slot frees
   * sooner. @default 250
   */
  busyHoldMs?: number;
  /**
   * Where calls wait when every capable backend is busy. Without one, such a call fails at once
   * with UNAVAILABLE.
   */
  admission?: AdmissionQueue;
}

/** The set of backends, their health, and the routing decision over them. */
export interface BackendRegistry {
  /**
   * Adds a backend in PENDING state (or replaces one with the same id, e.g. a reconnecting agent,
   * which starts PENDING again with a closed breaker); a heartbeat or a successful probe makes it
   * READY.
   */
  add(registration: BackendRegistration, reason: string): void;
  /** Removes a backend; in-flight leases stay valid until released. */
  remove(id: string, reason: string): void;
  /**
   * Compatibility setter: DRAINING drains, READY undrains and marks it alive, UNHEALTHY marks the
   * link lost, PENDING is ignored, REMOVED removes. Unknown ids are ignored.
   */
  setState(id: string, state: BackendState, reason: string): void;
  /** Stops routing new work to a backend; `by` says who asked (a backend may undrain itself). */
  drain(id: string, reason: string, by?: "admin" | "backend"): void;
  /** Routes work to a drained backend again (it still needs to be healthy). */
  undrain(id: string, reason: string): void;
  /** Feeds the backend's health state machine (heartbeat, link lost). */
  signal(id: string, signal: HealthSignal, reason: string): void;
  /** Records a heartbeat with the backend's own load: proves it alive (PENDING → READY). */
  heartbeat(id: string, load?: LoadReport): void;
  /** Records a backend's own load report and marks it seen. */
  reportLoad(id: string, load: LoadReport): void;
  /**
   * Records an active probe's result: health, serving state and load. Capabilities stay those of
   * the registration (an agent's hello, a static backend's config).
   */
  reportProbe(id: string, result: ProbeResult): void;
  /** Returns a backend by id. */
  get(id: string): Readonly<RegisteredBackend> | undefined;
  /** Returns every backend, sorted by id. */
  list(): Readonly<RegisteredBackend>[];
  /**
   * Reserves the best backend for a call: capability, health, breaker and free-slot filter, then
   * priority, then least loaded (in-flight / slots).
   *
   * @throws ConnectError FAILED_PRECONDITION naming the missing capability when no registered
   *   backend offers it; UNAVAILABLE naming why when backends offer it but none can take the call
   *   now (none connected, pending, unhealthy, draining, breaker open, busy).
   */
  lease(criteria: BackendCriteria): BackendLease;
  /**
   * Runs a call with failover: leases the best backend, runs `run` on it, and moves to the next
   * candidate when the backend fails, is full or is unreachable before `run` yielded anything.
   * Once an item reached the caller, a failure ends the call with an error naming the backend
   * (never a clean end). The overall deadline covers every attempt. This is the only retry loop.
   */
  call<T>(
    criteria: BackendCriteria,
    options: BackendCallOptions,
    run: (attempt: BackendAttempt) => AsyncIterable<T>,
  ): AsyncGenerator<T>;
  /** Subscribes to changes; returns the unsubscribe function. */
  watch(listener: (event: BackendEvent) => void): () => void;
  /** Figures of the admission queue; undefined without one. */
  admissionStats(): AdmissionStats | undefined;
}

interface Entry {
  backend: RegisteredBackend;
  health: HealthMachine;
  breaker: CircuitBreaker;
  drainedBy: "admin" | "backend" | undefined;
  /**
   * The backend said it had no free slot (its slots serve other gateways too): it counts as busy
   * until a slot frees here, its load report shows a free one, or a short while passed.
   */
  fullUntil: number;
  /**
   * Heartbeats in a row in which the backend reported more calls running than this gateway has
   * on it and no free slot (calls of another gateway, or slots it leaked): it is full by its
   * own word. Two in a row count, so a report that crossed a call's end does not.
   */
  fullByReport: number;
  /**
   * "Busy" refusals in a row, each against a different report that showed it idle. One can be a
   * race (other gateways took the slots after the report); several reports in a row are a fault.
   */
  busyContradictions: number;
  /** Load reports received so far (heartbeats, probes): tells one report from the next. */
  reportsSeen: number;
  /** The report the last counted contradiction was against: each report counts once. */
  contradictedReport: number;
}

/**
 * "Busy" refusals in a row, each against its own report of no call in flight, that count as a
 * failure.
 */
const kBusyContradictionLimit = 3;

/** Creates an empty registry. */
export function createBackendRegistry(options: BackendRegistryOptions): BackendRegistry {
  const log = options.log.child({ component: "registry" });
  const admission = options.admission;
  // State changes (a backend ready, undrained, a breaker closed) may open slots; the pump runs
  // after the change's own bookkeeping, never in the middle of a lease.
  let pumpScheduled = false;
  const schedulePump = () => {
    if (!admission || pumpScheduled) return;
    pumpScheduled = true;
    queueMicrotask(() => {
      pumpScheduled = false;
      admission.pump();
    });
  };
  const now = options.now ?? Date.now;
  const busyHoldMs = options.busyHoldMs ?? 250;
  const maxAttempts = Math.max(1, options.maxAttempts);
  const entries = new Map<string, Entry>();
  const events = new EventEmitter();
  // Each watcher is one listener; admin streams can be many.
  events.setMaxListeners(0);

  const emit = (backend: RegisteredBackend, change: BackendChange, reason: string) => {
    const event: BackendEvent = { backend: { ...backend }, change, reason, time: new Date() };
    events.emit("change", event);
  };

  /** Recomputes the visible state and breaker of an entry, emitting what changed. */
  const sync = (entry: Entry, reason: string) => {
    const { backend } = entry;
    const breaker = entry.breaker.state;
    const state = visibleState(entry.health.health, entry.drainedBy !== undefined);
    // A backend that recovered (back to READY, or its breaker closed again) no longer shows the
    // error of its outage: lastError says what is wrong now, the logs keep the history.
    const recovered =
      (state === BackendState.READY && backend.state === BackendState.UNHEALTHY) ||
      (breaker === BreakerState.CLOSED && backend.breaker !== BreakerState.CLOSED);
    if (recovered) backend.lastError = "";
    if (breaker !== backend.breaker) {
      backend.breaker = breaker;
      log.info(
        { backend: backend.id, breaker: BreakerState[breaker], reason },
        "backend breaker changed",
      );
      emit(backend, "breaker", reason);
    }
    if (state !== backend.state) {
      backend.state = state;
      log.info(
        { backend: backend.id, state: BackendState[state], reason },
        "backend state changed",
      );
      emit(backend, "state", reason);
    }
    schedulePump();
  };

  const slotsOf = (b: RegisteredBackend) => Math.max(1, b.capabilities.slots);

  const offers = (b: RegisteredBackend, criteria: BackendCriteria) =>
    b.capabilities.engines.some(
      (engine) =>
        engine.features.includes(criteria.feature) &&
        (!criteria.engine || engine.id === criteria.engine) &&
        (criteria.exactModel
          ? // A clone prompt fits only the very model that made it: empty matches only empty.
            (engine.model?.family ?? "") === (criteria.modelFamily ?? "") &&
            (engine.model?.size ?? "") === (criteria.modelSize ?? "")
          : (!criteria.modelFamily || engine.model?.family === criteria.modelFamily) &&
            (!criteria.modelSize || engine.model?.size === criteria.modelSize)),
    );

  /** Why a capable backend cannot take a call now, or undefined when it can. */
  const refusal = (entry: Entry): string | undefined => {
    const { backend } = entry;
    if (entry.drainedBy) return "draining";
    switch (entry.health.health) {
      case "pending":
        return "pending (not yet proven healthy)";
      case "unhealthy":
        return `unhealthy${backend.lastError ? ` (${backend.lastError})` : ""}`;
      case "ready":
        break;
    }
    if (!entry.breaker.allows()) {
      return entry.breaker.state === BreakerState.OPEN
        ? "breaker open"
        : "breaker half-open (trial running)";
    }
    if (backend.inFlight >= slotsOf(backend)) {
      return `busy (${backend.inFlight}/${slotsOf(backend)} slots)`;
    }
    if (entry.fullUntil > performance.now()) return "busy (its slots serve other gateways)";
    if (entry.fullByReport >= 2 && backend.load) {
      return `busy (the backend reports ${backend.load.inFlight}/${backend.load.slots} slots in use)`;
    }
    return undefined;
  };

  const settle = (
    entry: Entry,
    ticket: BreakerTicket,
    outcome: CallOutcome,
    error: string | undefined,
  ) => {
    const result =
      outcome === "ok" ? "success" : outcome === "backend-failure" ? "failure" : "neutral";
    const transition = entry.breaker.settle(ticket, result, error);
    sync(entry, transition?.reason ?? "call ended");
  };

  /**
   * Leases the best backend, or says why none fits: `busy` when at least one capable backend is
   * only out of slots (a slot will free, so the call may wait for it).
   */
  const pick = (
    criteria: BackendCriteria,
  ): { lease: BackendLease } | { error: () => ConnectError; busy: boolean } => {
    const all = [...entries.values()];
    const capable = all.filter((e) => offers(e.backend, criteria));
    const wanted = describeWanted(criteria);
    if (all.length > 0 && capable.length === 0) {
      return {
        busy: false,
        error: () =>
          new ConnectError(`no connected backend offers ${wanted}`, Code.FailedPrecondition),
      };
    }
    const candidates = capable.filter((e) => !criteria.exclude?.has(e.backend.id));
    const refusals = candidates.map((e) => [e, refusal(e)] as const);
    const chosen = refusals
      .filter(([, why]) => why === undefined)
      .map(([e]) => e)
      .sort(
        (a, b) =>
          a.backend.priority - b.backend.priority ||
          holdsPrompt(b.backend, criteria) - holdsPrompt(a.backend, criteria) ||
          a.backend.inFlight / slotsOf(a.backend) - b.backend.inFlight / slotsOf(b.backend),
      )[0];
    if (!chosen) {
      return {
        busy: refusals.some(([, why]) => why?.startsWith("busy")),
        error: () =>
          new ConnectError(
            whyNothingFits(
              all.length,
              wanted,
              criteria,
              refusals
                .map(([e, why]) => [e.backend.id, why ?? ""] as const)
                .sort(([a], [b]) => a.localeCompare(b)),
            ),
            Code.Unavailable,
          ),
      };
    }
    const backend = chosen.backend;
    const ticket = chosen.breaker.enter();
    sync(chosen, "cooldown over: trial call");
    backend.inFlight++;
    backend.callsTotal++;
    let released = false;
    const leasedAt = performance.now();
    const lease: BackendLease = {
      backend,
      release(outcome, error) {
        if (released) return;
        released = true;
        if (outcome === "ok") admission?.recordService(performance.now() - leasedAt);
        // An agent that reconnected mid-call is a new record carrying this call in its count.
        const current = entries.get(backend.id);
        const target = current?.backend ?? backend;
        target.inFlight = Math.max(0, target.inFlight - 1);
        if (outcome === "backend-busy" && current) {
          current.fullUntil = performance.now() + busyHoldMs;
          const timer = setTimeout(schedulePump, busyHoldMs + 1);
          timer.unref();
        } else if (current) {
          current.fullUntil = 0;
        }
        // "Busy" again and again from a backend whose own reports show it idle is not load, it is
        // a fault: counted as a failure, so its breaker opens and routing moves on, and the admin
        // view says why. Only an idle report counts (an agent shared by several gateway replicas
        // reports calls in flight and a free slot that another replica may take first), and each
        // report once: when a burst starts, every replica leases the agents its last report shows
        // idle and all but a few of those calls are refused, again after each busy hold, until
        // the next heartbeat; a starved agent's heartbeat comes seconds late, so one stale report
        // met a dozen refusals and opened every echo agent's breaker (the deploy test's 4x
        // overload in full CI runs).
        const load = target.load;
        const idleByReport =
          outcome === "backend-busy" && load !== undefined && load.inFlight === 0 && load.slots > 0;
        const sameReport =
          current !== undefined && current.contradictedReport === current.reportsSeen;
        const contradicts = idleByReport && !sameReport;
        if (current && !(idleByReport && sameReport)) {
          current.busyContradictions = contradicts ? current.busyContradictions + 1 : 0;
          if (contradicts) current.contradictedReport = current.reportsSeen;
        }
        const contradicted =
          contradicts && (current?.busyContradictions ?? 0) >= kBusyContradictionLimit;
        const settled: CallOutcome = contradicted ? "backend-failure" : outcome;
        const why = contradicted
          ? `refuses calls as busy (${error ?? "no free slot"}) while reporting ${load?.inFlight}/${load?.slots} slots in use`
          : error;
        if (settled === "backend-failure") {
          target.failuresTotal++;
          target.lastError = why ?? "call failed";
          if (contradicted)
            log.warn({ backend: target.id, reason: why }, "backend contradicts itself");
        } else if (outcome === "ok") {
          target.lastSeenAt = new Date(now());
        }
        // A call from an older session says nothing about the new one's breaker.
        if (current && current === chosen) settle(current, ticket, settled, why);
        // The freed slot goes to the head of the queue before any newcomer can take it.
        admission?.pump();
      },
    };
    return { lease };
  };

  const lease = (criteria: BackendCriteria): BackendLease => {
    const picked = pick(criteria);
    if ("lease" in picked) return picked.lease;
    throw picked.error();
  };

  /** Slots of the backends that could take a call once free (busy or free, not broken). */
  const capacityFor = (criteria: BackendCriteria) => {
    let slots = 0;
    for (const entry of entries.values()) {
      if (!offers(entry.backend, criteria) || criteria.exclude?.has(entry.backend.id)) continue;
      const why = refusal(entry);
      if (why === undefined || why.startsWith("busy")) slots += slotsOf(entry.backend);
    }
    return slots;
  };

  const registry: BackendRegistry = {
    add(registration, reason) {
      const previous = entries.get(registration.id)?.backend;
      const at = new Date(now());
      const backend: RegisteredBackend = {
        ...registration,
        state: BackendState.PENDING,
        breaker: BreakerState.CLOSED,
        inFlight: previous?.inFlight ?? 0,
        load: undefined,
        lastError: "",
        connectedAt: at,
        lastSeenAt: at,
        callsTotal: previous?.callsTotal ?? 0,
        failuresTotal: previous?.failuresTotal ?? 0,
      };
      entries.set(backend.id, {
        backend,
        health: createHealthMachine(options.health),
        breaker: createCircuitBreaker({ ...options.breaker, now }),
        drainedBy: undefined,
        fullUntil: 0,
        fullByReport: 0,
        busyContradictions: 0,
        reportsSeen: 0,
        contradictedReport: -1,
      });
      log.info({ backend: backend.id, address: backend.address, reason }, "backend added");
      emit(backend, "added", reason);
      schedulePump();
    },
    remove(id, reason) {
      const entry = entries.get(id);
      if (!entry) return;
      entries.delete(id);
      entry.backend.state = BackendState.REMOVED;
      log.info({ backend: id, reason }, "backend removed");
      emit(entry.backend, "removed", reason);
    },
    setState(id, state, reason) {
      switch (state) {
        case BackendState.DRAINING:
          return registry.drain(id, reason);
        case BackendState.READY:
          registry.undrain(id, reason);
          return registry.signal(id, { kind: "probe-ok" }, reason);
        case BackendState.UNHEALTHY:
          return registry.signal(id, { kind: "lost", error: reason }, reason);
        case BackendState.REMOVED:
          return registry.remove(id, reason);
        default:
          return;
      }
    },
    drain(id, reason, by = "admin") {
      const entry = entries.get(id);
      if (!entry || entry.drainedBy) return;
      entry.drainedBy = by;
      sync(entry, reason);
    },
    undrain(id, reason) {
      const entry = entries.get(id);
      if (!entry?.drainedBy) return;
      entry.drainedBy = undefined;
      sync(entry, reason);
    },
    signal(id, signal, reason) {
      const entry = entries.get(id);
      if (!entry) return;
      if (signal.kind === "lost" || signal.kind === "probe-failed") {
        entry.backend.lastError = signal.error;
      }
      entry.health.apply(signal);
      sync(entry, reason);
    },
    heartbeat(id, load) {
      const entry = entries.get(id);
      if (!entry) return;
      if (load) {
        entry.backend.load = load;
        entry.reportsSeen++;
        const full = load.slots > 0 && load.inFlight >= load.slots;
        entry.fullByReport =
          full && load.inFlight > entry.backend.inFlight ? entry.fullByReport + 1 : 0;
      }
      if (load && load.inFlight < load.slots && entry.fullUntil > 0) {
        // A slot freed on the backend (another gateway's call ended): waiting calls may try it.
        entry.fullUntil = 0;
        schedulePump();
      }
      entry.backend.lastSeenAt = new Date(now());
      entry.health.apply({ kind: "heartbeat" });
      sync(entry, "first heartbeat");
    },
    reportLoad(id, load) {
      const entry = entries.get(id);
      if (!entry) return;
      entry.backend.load = load;
      entry.reportsSeen++;
      entry.backend.lastSeenAt = new Date(now());
    },
    reportProbe(id, result) {
      const entry = entries.get(id);
      if (!entry) return;
      if (!result.ok) {
        if (result.timedOut && entry.backend.kind === BackendKind.AGENT) {
          // A saturated agent answers late; dropping it from routing would turn load into an
          // outage. Its liveness is its session's to judge.
          return;
        }
        registry.signal(
          id,
          { kind: "probe-failed", error: `health probe: ${result.error}` },
          `health probe failed: ${result.error}`,
        );
        return;
      }
      const { response } = result;
      const { backend } = entry;
      if (response.load) {
        backend.load = response.load;
        entry.reportsSeen++;
      }
      switch (response.state) {
        case ServingState.SERVING:
          backend.lastSeenAt = new Date(now());
          if (entry.drainedBy === "backend") entry.drainedBy = undefined;
          registry.signal(id, { kind: "probe-ok" }, "health probe succeeded");
          return;
        case ServingState.DRAINING:
          backend.lastSeenAt = new Date(now());
          registry.drain(
            id,
            `backend draining${response.message ? `: ${response.message}` : ""}`,
            "backend",
          );
          return;
        default: {
          const why = `not serving${response.message ? `: ${response.message}` : ""}`;
          registry.signal(
            id,
            { kind: "probe-failed", error: `health probe: ${why}` },
            `health probe: ${why}`,
          );
          return;
        }
      }
    },
    get: (id) => entries.get(id)?.backend,
    list: () =>
      [...entries.values()].map((e) => e.backend).sort((a, b) => a.id.localeCompare(b.id)),
    lease,
    async *call(criteria, callOptions, run) {
      const deadline =
        callOptions.timeoutMs !== undefined ? performance.now() + callOptions.timeoutMs : undefined;
      const signal = callOptions.signal ?? new AbortController().signal;
      const tried = new Set<string>([...(criteria.exclude ?? [])]);
      const failures: string[] = [];
      // Backends that were full after all (their slots serve other gateways too) are tried again
      // once free and cost no attempt; this bounds how often one call bounces.
      let busyBounces = 0;
      // Time spent waiting for a slot so far, over every wait and bounce of this call: a bounced
      // call's last admission alone would report 0 for a call that waited seconds.
      let waitedMs = 0;
      let bouncedAt: number | undefined;
      // Attempts and queue waits are children of the call's span, whoever reads this generator.
      const parentContext = context.active();
      for (let attempt = 1; ; attempt++) {
        if (signal.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
        let leased: BackendLease;
        try {
          const wanted: BackendCriteria = { ...criteria, exclude: new Set(tried) };
          const picked = pick(wanted);
          if ("lease" in picked) {
            leased = picked.lease;
            if (bouncedAt !== undefined) waitedMs += performance.now() - bouncedAt;
            bouncedAt = undefined;
            if (attempt === 1) callOptions.onAdmitted?.(waitedMs);
          } else if (picked.busy && admission) {
            // Nothing was sent yet: waiting for a slot changes no failover rule.
            const queuedAt = performance.now();
            const queueSpan = tracer.startSpan(
              "voxgate.queue",
              { attributes: { "voxgate.attempt": attempt } },
              parentContext,
            );
            leased = await admission
              .wait({
                key: callOptions.queueKey ?? "",
                group: groupOf(wanted),
                tryAcquire() {
                  const again = pick(wanted);
                  return "lease" in again ? again.lease : undefined;
                },
                capacity: () => capacityFor(wanted),
                // A call whose slot was taken after all keeps its turn.
                resume: busyBounces > 0,
                signal,
                timeoutMs:
                  deadline !== undefined ? Math.max(0, deadline - performance.now()) : undefined,
              })
              .catch((err: unknown) => {
                failSpan(queueSpan, err);
                queueSpan.end();
                throw err;
              });
            queueSpan.setAttribute("voxgate.backend", leased.backend.id);
            queueSpan.end();
            waitedMs += performance.now() - (bouncedAt ?? queuedAt);
            bouncedAt = undefined;
            callOptions.onAdmitted?.(waitedMs);
          } else {
            throw picked.error();
          }
        } catch (err) {
          const error = ConnectError.from(err);
          if (failures.length === 0) throw error;
          throw new ConnectError(
            `${failures.join("; ")}; ${error.rawMessage}`,
            error.code,
            error.metadata,
          );
        }
        const { backend } = leased;
        const timeoutMs =
          deadline !== undefined
            ? Math.max(1, Math.floor(deadline - performance.now()))
            : undefined;
        let yielded = false;
        let outcome: CallOutcome = "caller-gone";
        let failure: string | undefined;
        // The attempt's span is active while the backend is called, so the agent offer carries it.
        const attemptSpan = tracer.startSpan(
          "voxgate.attempt",
          {
            kind: SpanKind.CLIENT,
            attributes: {
              "voxgate.backend": backend.id,
              "voxgate.backend.kind": BackendKind[backend.kind].toLowerCase(),
              "voxgate.attempt": attempt,
            },
          },
          parentContext,
        );
        const items = attemptSpan.isRecording()
          ? iterateInContext(trace.setSpan(parentContext, attemptSpan), () =>
              run({ backend, attempt, signal, timeoutMs }),
            )
          : run({ backend, attempt, signal, timeoutMs });
        try {
          for await (const item of items) {
            if (!yielded) {
              yielded = true;
              callOptions.onFirstItem?.(backend, attempt);
            }
            yield item;
          }
          outcome = "ok";
          return;
        } catch (err) {
          const error = ConnectError.from(err);
          failure = error.rawMessage;
          const gone = signal.aborted;
          const fault = !gone && isBackendFault(error.code);
          outcome = gone
            ? "caller-gone"
            : !fault
              ? "ok"
              : error.code === Code.ResourceExhausted
                ? "backend-busy"
                : "backend-failure";
          if (fault && yielded) {
            // Audio already reached the caller: ending cleanly would pass a short clip off as whole.
            throw new ConnectError(
              `backend ${backend.id} failed after audio was sent (the audio is incomplete): ${error.rawMessage}`,
              error.code === Code.Unavailable ? Code.Unavailable : Code.Aborted,
              error.metadata,
              undefined,
              error,
            );
          }
          // A (nearly) spent deadline leaves nothing for another backend; timers may fire a
          // millisecond early, hence the margin.
          const expired = deadline !== undefined && performance.now() >= deadline - 10;
          const busy = outcome === "backend-busy" && !yielded;
          if (busy && !expired && busyBounces < kMaxBusyBounces) {
            busyBounces++;
            attempt--;
            bouncedAt = performance.now();
            log.debug(
              { backend: backend.id },
              "backend had no free slot after all; waiting for one",
            );
            continue;
          }
          tried.add(backend.id);
          if (!fault || attempt >= maxAttempts || expired) {
            if (fault && failures.length > 0) {
              throw new ConnectError(
                `${failures.join("; ")}; backend ${backend.id} failed: ${error.rawMessage}`,
                error.code,
                error.metadata,
                undefined,
                error,
              );
            }
            throw error;
          }
          failures.push(`backend ${backend.id} failed: ${error.rawMessage}`);
          log.warn(
            { backend: backend.id, attempt, code: Code[error.code], err: error.rawMessage },
            "call failed before any audio was sent; trying the next backend",
          );
        } finally {
          // Also reached when the caller stops reading early (the generator is returned).
          const released = signal.aborted && outcome !== "ok" ? "caller-gone" : outcome;
          attemptSpan.setAttribute("voxgate.outcome", released);
          if (failure !== undefined) failSpan(attemptSpan, failure);
          attemptSpan.end();
          leased.release(released, failure);
        }
      }
    },
    watch(listener) {
      events.on("change", listener);
      return () => events.off("change", listener);
    },
    admissionStats: () => admission?.stats(),
  };
  return registry;
}

/** Most times one call meets a backend that turned out full before it gives up. */
const kMaxBusyBounces = 100;

/** 1 when the backend already holds the call's clone prompt, else 0 (a sort key). */
function holdsPrompt(backend: RegisteredBackend, criteria: BackendCriteria): number {
  return criteria.promptDigest && backend.promptDigests?.has(criteria.promptDigest) ? 1 : 0;
}

/** Calls with equal groups want the same backends (the admission queue skips alike calls). */
function groupOf(criteria: BackendCriteria): string {
  return JSON.stringify([
    criteria.feature,
    criteria.engine ?? "",
    criteria.modelFamily ?? "",
    criteria.modelSize ?? "",
    criteria.exactModel ?? false,
    [...(criteria.exclude ?? [])].sort(),
  ]);
}

function describeWanted(criteria: BackendCriteria): string {
  const model = [criteria.modelFamily, criteria.modelSize].filter(Boolean).join(" ");
  return [
    Feature[criteria.feature].toLowerCase(),
    criteria.engine ? `engine "${criteria.engine}"` : "",
    model ? `model "${model}"` : "",
  ]
    .filter(Boolean)
    .join(", ");
}

function whyNothingFits(
  total: number,
  wanted: string,
  criteria: BackendCriteria,
  refusals: ReadonlyArray<readonly [string, string]>,
): string {
  if (total === 0) {
    return "no backend is connected: start an agent (voxgate agent --gateway HOST:PORT) or check its token";
  }
  if (refusals.length === 0) {
    return `no other backend offering ${wanted} is connected (tried ${[...(criteria.exclude ?? [])].join(", ")})`;
  }
  if (refusals.every(([, why]) => why.startsWith("busy"))) {
    return `every backend offering ${wanted} is busy (all slots in use); retry shortly`;
  }
  const reasons = refusals.map(([id, why]) => `${id} ${why}`).join("; ");
  return `no backend offering ${wanted} can take the call now: ${reasons}`;
}
