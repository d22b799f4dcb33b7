import { Code, ConnectError } from "@connectrpc/connect";
import { gatewaySettings } from "../gateway/gateway-settings.js";

/** Response header (Connect, REST, OpenAI) and gRPC trailer telling a refused caller when to retry. */
export const kRetryAfterHeader = "retry-after";

/** Options of {@link createAdmissionQueue}. */
export interface AdmissionQueueOptions {
  /**
   * Most calls waiting at once, over every token; 0 refuses at once when every slot is busy.
   * @default setting queueMax
   */
  maxQueued?: number;
  /**
   * Longest time a call waits for a slot, in ms (its own deadline may end the wait sooner).
   * @default setting queueMaxWaitMs
   */
  maxWaitMs?: number;
  /**
   * Service time assumed before any call finished, in ms (for the expected wait and
   * `Retry-After`). @default 1000
   */
  initialServiceMs?: number;
  /** Monotonic clock, in ms. @default performance.now */
  now?: () => number;
}

/** One call that wants a slot. */
export interface AdmissionRequest<L> {
  /** Fairness key: the caller's token name; each key gets its turn. */
  key: string;
  /**
   * Calls with the same group want the same backends: once one of a group found no slot in a
   * round, the rest of that group is skipped (a cheap pump).
   */
  group: string;
  /** Takes a slot when one is free; undefined when none is. Must not throw. */
  tryAcquire(): L | undefined;
  /** Slots of the backends this call could use (for the expected wait); at least 1 is assumed. */
  capacity(): number;
  /** Caller gone: the call leaves the queue at once. */
  signal: AbortSignal;
  /** Remaining deadline, in ms; undefined when the call has none. */
  timeoutMs: number | undefined;
  /**
   * The call had its turn already, but the slot it got was taken after all (the backend serves
   * other gateways too): it waits ahead of every line, so it does not lose its turn.
   * @default false
   */
  resume?: boolean;
}

/** Queue figures, for metrics and benches. */
export interface AdmissionStats {
  /** Calls waiting now. */
  queued: number;
  /** Calls that waited and got a slot. */
  admittedTotal: number;
  /** Calls refused because the queue was full or the expected wait was too long. */
  refusedTotal: number;
  /** Calls whose wait ended by deadline, longest wait or cancel. */
  expiredTotal: number;
  /** Recent service time (exponential moving average), in ms. */
  serviceMs: number;
}

/**
 * A bounded wait line for backend slots, fair across tokens: each token has its own sub-queue
 * ordered by deadline (earliest first, then arrival), and freed slots go round-robin over the
 * tokens, so one busy token cannot starve the others. A waiting call leaves at once when its
 * caller goes away or its wait ends. Whoever frees capacity calls {@link AdmissionQueue.pump}.
 */
export interface AdmissionQueue {
  /**
   * Waits until `request.tryAcquire()` succeeds for this call, in fair order.
   *
   * @throws ConnectError RESOURCE_EXHAUSTED (with `retry-after` metadata) when the queue is full or
   *   the expected wait is longer than the call may wait; RESOURCE_EXHAUSTED when the longest wait
   *   passed; DEADLINE_EXCEEDED when the deadline passed; CANCELED when the caller went away.
   */
  wait<L>(request: AdmissionRequest<L>): Promise<L>;
  /** Hands free slots to waiting calls in fair order; cheap when nobody waits. Re-entrant safe. */
  pump(): void;
  /** Records how long a call held its slot, in ms (feeds the expected wait and `Retry-After`). */
  recordService(ms: number): void;
  /** Seconds a refused caller should wait before retrying (at least 1). */
  retryAfterSeconds(capacity: number): number;
  /** Current figures. */
  stats(): AdmissionStats;
}

interface Waiter {
  request: AdmissionRequest<unknown>;
  deadline: number;
  seq: number;
  resolve(lease: unknown): void;
  reject(error: ConnectError): void;
}

/** Share of a new service time in the moving average. */
const SERVICE_EWMA_WEIGHT = 0.2;

/** Creates an empty admission queue. */
export function createAdmissionQueue(options: AdmissionQueueOptions = {}): AdmissionQueue {
  const maxQueued = options.maxQueued ?? gatewaySettings.queueMax.defaultValue;
  const maxWaitMs = options.maxWaitMs ?? gatewaySettings.queueMaxWaitMs.defaultValue;
  const now = options.now ?? (() => performance.now());
  let serviceMs = options.initialServiceMs ?? 1000;
  let measured = false;
  // Sub-queues by key, in the round-robin order of the keys' first arrival.
  const byKey = new Map<string, Waiter[]>();
  // Calls that lost the slot their turn gave them; served before the lines, in arrival order.
  const front: Waiter[] = [];
  let turn = 0;
  let queued = 0;
  let seq = 0;
  let pumping = false;
  let pumpAgain = false;
  const stats = { admittedTotal: 0, refusedTotal: 0, expiredTotal: 0 };

  const expectedWaitMs = (ahead: number, capacity: number) =>
    ((ahead + 1) * serviceMs) / Math.max(1, capacity);

  const retryAfterSeconds = (capacity: number) =>
    Math.max(1, Math.ceil(expectedWaitMs(queued, capacity) / 1000));

  const refuse = (message: string, capacity: number) => {
    stats.refusedTotal++;
    return new ConnectError(message, Code.ResourceExhausted, {
      [kRetryAfterHeader]: String(retryAfterSeconds(capacity)),
    });
  };

  const remove = (waiter: Waiter) => {
    const ahead = front.indexOf(waiter);
    if (ahead >= 0) {
      front.splice(ahead, 1);
      queued--;
      return true;
    }
    const list = byKey.get(waiter.request.key);
    if (!list) return false;
    const index = list.indexOf(waiter);
    if (index < 0) return false;
    list.splice(index, 1);
    queued--;
    if (list.length === 0) {
      const position = [...byKey.keys()].indexOf(waiter.request.key);
      byKey.delete(waiter.request.key);
      // Keep the turn on the same key after the key list shrank.
      if (position < turn) turn--;
      if (turn >= byKey.size) turn = 0;
    }
    return true;
  };

  /** One fair pass: tries keys round-robin from `turn`; returns whether a waiter got a slot. */
  const admitOne = (): boolean => {
    const failedGroups = new Set<string>();
    for (const waiter of front) {
      if (failedGroups.has(waiter.request.group)) continue;
      const lease = waiter.request.tryAcquire();
      if (lease === undefined) {
        failedGroups.add(waiter.request.group);
        continue;
      }
      remove(waiter);
      stats.admittedTotal++;
      waiter.resolve(lease);
      return true;
    }
    const keys = [...byKey.keys()];
    for (let i = 0; i < keys.length; i++) {
      const index = (turn + i) % keys.length;
      const list = byKey.get(keys[index] as string) ?? [];
      for (const waiter of list) {
        if (failedGroups.has(waiter.request.group)) continue;
        const lease = waiter.request.tryAcquire();
        if (lease === undefined) {
          failedGroups.add(waiter.request.group);
          continue;
        }
        // The next turn goes to the key after this one, whether or not this one's list emptied.
        const nextKey = keys[(index + 1) % keys.length] as string;
        remove(waiter);
        turn = Math.max(0, [...byKey.keys()].indexOf(nextKey));
        stats.admittedTotal++;
        waiter.resolve(lease);
        return true;
      }
    }
    return false;
  };

  const pump = () => {
    if (queued === 0) return;
    if (pumping) {
      // A slot freed while handing out another (a lease's own bookkeeping): look again after.
      pumpAgain = true;
      return;
    }
    pumping = true;
    try {
      do {
        pumpAgain = false;
        while (queued > 0 && admitOne()) {}
      } while (pumpAgain && queued > 0);
    } finally {
      pumping = false;
    }
  };

  return {
    wait<L>(request: AdmissionRequest<L>): Promise<L> {
      const capacity = Math.max(1, request.capacity());
      if (request.signal.aborted) {
        return Promise.reject(ConnectError.from(request.signal.reason, Code.Canceled));
      }
      // A resumed call already waited its turn: it is not refused again.
      if (!request.resume && queued >= maxQueued) {
        return Promise.reject(
          refuse(
            `every slot is busy and the admission queue is full (${maxQueued} calls waiting; max queued calls: VOXGATE_QUEUE_MAX); retry later`,
            capacity,
          ),
        );
      }
      const allowedMs = Math.min(maxWaitMs, request.timeoutMs ?? Number.POSITIVE_INFINITY);
      const expected = expectedWaitMs(queued, capacity);
      if (!request.resume && measured && expected > allowedMs) {
        return Promise.reject(
          refuse(
            `every slot is busy; the expected wait (${Math.round(expected)} ms for ${queued} calls ahead) ` +
              `is longer than this call may wait (${Math.round(allowedMs)} ms: its deadline or ` +
              "longest queue wait VOXGATE_QUEUE_MAX_WAIT_MS); retry later",
            capacity,
          ),
        );
      }
      return new Promise<L>((resolve, reject) => {
        const start = now();
        const byDeadline = request.timeoutMs !== undefined;
        const waiter: Waiter = {
          request: request as AdmissionRequest<unknown>,
          deadline: start + allowedMs,
          seq: seq++,
          resolve: (lease) => {
            cleanup();
            resolve(lease as L);
          },
          reject: (error) => {
            cleanup();
            reject(error);
          },
        };
        const onAbort = () => {
          if (!remove(waiter)) return;
          stats.expiredTotal++;
          waiter.reject(ConnectError.from(request.signal.reason, Code.Canceled));
        };
        const timer = setTimeout(
          () => {
            if (!remove(waiter)) return;
            stats.expiredTotal++;
            const waited = Math.round(now() - start);
            waiter.reject(
              byDeadline && (request.timeoutMs ?? 0) <= maxWaitMs
                ? new ConnectError(
                    `the deadline passed while the call waited ${waited} ms for a free slot`,
                    Code.DeadlineExceeded,
                  )
                : refuse(
                    `no slot freed within ${maxWaitMs} ms (longest queue wait: VOXGATE_QUEUE_MAX_WAIT_MS); retry later`,
                    capacity,
                  ),
            );
          },
          Number.isFinite(allowedMs) ? Math.max(0, allowedMs) : maxWaitMs,
        );
        const cleanup = () => {
          clearTimeout(timer);
          request.signal.removeEventListener("abort", onAbort);
        };
        request.signal.addEventListener("abort", onAbort, { once: true });
        if (request.resume) {
          front.push(waiter);
          queued++;
          pump();
          return;
        }
        let list = byKey.get(request.key);
        if (!list) {
          list = [];
          byKey.set(request.key, list);
        }
        // Earliest deadline first within a token; equal deadlines keep arrival order.
        let at = list.length;
        while (
          at > 0 &&
          ((list[at - 1] as Waiter).deadline > waiter.deadline ||
            ((list[at - 1] as Waiter).deadline === waiter.deadline &&
              (list[at - 1] as Waiter).seq > waiter.seq))
        ) {
          at--;
        }
        list.splice(at, 0, waiter);
        queued++;
        // A slot may have freed between the caller's try and now.
        pump();
      });
    },
    pump,
    recordService(ms) {
      if (!Number.isFinite(ms) || ms < 0) return;
      serviceMs = measured ? serviceMs + SERVICE_EWMA_WEIGHT * (ms - serviceMs) : ms;
      measured = true;
    },
    retryAfterSeconds,
    stats: () => ({ queued, ...stats, serviceMs }),
  };
}
