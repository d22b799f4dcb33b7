import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { kRetryAfterHeader } from "../admission/admission-queue.js";
import { hasLimits, kWindowMs, type TokenLimits, type UsageKind } from "./token-limits.js";
import { type UsageDelta, type UsageStore, usageKey } from "./usage-store.js";

/** Options of {@link createUsageMeter}. */
export interface UsageMeterOptions {
  /** Limits by token name; tokens without limits are not counted at all. */
  limits: ReadonlyMap<string, TokenLimits>;
  /** Where replicas share their counts; without one each gateway counts alone. */
  store?: UsageStore | undefined;
  /** This gateway's id in the shared store (unique per process). */
  gatewayId: string;
  /** How often counts are shared, in ms. @default 2000 */
  flushIntervalMs?: number;
  /** Logger (failed flushes). */
  log: Logger;
  /** Wall clock, in ms since the epoch (windows are UTC minutes and days). @default Date.now */
  now?: () => number;
}

/** Counts each limited token's calls and characters and refuses what goes past its limits. */
export interface UsageMeter {
  /**
   * Counts the start of a call of `token` and returns the function that ends it (idempotent).
   *
   * @throws ConnectError RESOURCE_EXHAUSTED naming the limit (with `retry-after` metadata) when
   *   the token has `maxConcurrentCalls` calls running or made `maxRequestsPerMinute` this minute.
   */
  startCall(token: string): () => void;
  /**
   * Counts `chars` characters of text for `token`.
   *
   * @throws ConnectError RESOURCE_EXHAUSTED naming `maxCharsPerDay` when they do not fit in
   *   what is left of the token's day.
   */
  chargeChars(token: string, chars: number): void;
  /** Shares the counts now (also runs every `flushIntervalMs` once started). */
  flush(): Promise<void>;
  /**
   * Takes new limits (the tokens were reloaded): a token keeps its counts, a token that lost its
   * limits or was removed is no longer counted, a new one starts from zero here (the shared store
   * still holds what other replicas counted for it).
   */
  setLimits(limits: ReadonlyMap<string, TokenLimits>): void;
  /** Starts the periodic flush (only when some token has limits and a store is given). */
  start(): void;
  /** Stops the periodic flush after a last one. Idempotent. */
  close(): Promise<void>;
}

interface Counter {
  window: number;
  /** Total of every gateway for `window`, as of the last flush (ours included). */
  shared: number;
  /** Counted here since the last flush. */
  pending: number;
}

interface TokenState {
  limits: TokenLimits;
  inFlight: number;
  othersInFlight: number;
  counters: Record<UsageKind, Counter>;
  /** Counts of past windows not flushed yet. */
  carry: UsageDelta[];
}

/**
 * Creates a usage meter. Limits hold over every replica only approximately: each gateway checks
 * its own exact counts plus the others' as of the last flush, so replicas together may pass a
 * limit by what they admitted within one flush interval.
 */
export function createUsageMeter(options: UsageMeterOptions): UsageMeter {
  const log = options.log.child({ component: "usage-meter" });
  const now = options.now ?? Date.now;
  const flushIntervalMs = options.flushIntervalMs ?? 2000;
  const states = new Map<string, TokenState>();
  const setLimits = (all: ReadonlyMap<string, TokenLimits>) => {
    for (const token of states.keys()) {
      const limits = all.get(token);
      if (!limits || !hasLimits(limits)) states.delete(token);
    }
    for (const [token, limits] of all) {
      if (!hasLimits(limits)) continue;
      const state = states.get(token);
      if (state) {
        state.limits = limits;
        continue;
      }
      states.set(token, {
        limits,
        inFlight: 0,
        othersInFlight: 0,
        counters: {
          "requests-minute": { window: -1, shared: 0, pending: 0 },
          "chars-day": { window: -1, shared: 0, pending: 0 },
        },
        carry: [],
      });
    }
  };
  setLimits(options.limits);
  let started = false;

  /** The token's counter of `kind`, rolled over to the current window. */
  const counter = (token: string, state: TokenState, kind: UsageKind): Counter => {
    const c = state.counters[kind];
    const window = Math.floor(now() / kWindowMs[kind]);
    if (c.window !== window) {
      if (c.pending > 0) state.carry.push({ token, kind, window: c.window, delta: c.pending });
      c.window = window;
      c.shared = 0;
      c.pending = 0;
    }
    return c;
  };

  const secondsLeft = (kind: UsageKind) => {
    const ms = kWindowMs[kind];
    return Math.max(1, Math.ceil((ms - (now() % ms)) / 1000));
  };

  const refuse = (message: string, retryAfterSeconds: number) =>
    new ConnectError(message, Code.ResourceExhausted, {
      [kRetryAfterHeader]: String(retryAfterSeconds),
    });

  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let closed = false;

  const flushNow = async () => {
    if (!options.store || states.size === 0) return;
    const deltas: UsageDelta[] = [];
    const inFlight = new Map<string, number>();
    for (const [token, state] of states) {
      deltas.push(...state.carry.splice(0));
      for (const kind of ["requests-minute", "chars-day"] as const) {
        const max =
          kind === "requests-minute"
            ? state.limits.maxRequestsPerMinute
            : state.limits.maxCharsPerDay;
        if (!max) continue;
        const c = counter(token, state, kind);
        deltas.push({ token, kind, window: c.window, delta: c.pending });
        c.pending = 0;
      }
      if (state.limits.maxConcurrentCalls) inFlight.set(token, state.inFlight);
    }
    try {
      const result = await options.store.flush(options.gatewayId, deltas, inFlight);
      for (const [token, state] of states) {
        for (const kind of ["requests-minute", "chars-day"] as const) {
          const c = counter(token, state, kind);
          const total = result.totals.get(usageKey(token, kind, c.window));
          if (total !== undefined) c.shared = total;
        }
        if (inFlight.has(token)) state.othersInFlight = result.othersInFlight.get(token) ?? 0;
      }
    } catch (err) {
      // Counts are kept and shared at the next flush; meanwhile each gateway counts alone.
      for (const d of deltas) {
        const state = states.get(d.token);
        if (!state || d.delta === 0) continue;
        const c = state.counters[d.kind];
        if (c.window === d.window) c.pending += d.delta;
        else state.carry.push(d);
      }
      log.warn({ err }, "could not share token usage; limits count this gateway only until it can");
    }
  };

  const flush = () => {
    flushing ??= flushNow().finally(() => {
      flushing = undefined;
    });
    return flushing;
  };

  return {
    startCall(token) {
      const state = states.get(token);
      if (!state) return () => {};
      const { maxConcurrentCalls, maxRequestsPerMinute } = state.limits;
      if (maxConcurrentCalls && state.inFlight + state.othersInFlight >= maxConcurrentCalls) {
        throw refuse(
          `token "${token}" has ${state.inFlight + state.othersInFlight} calls running; its limit is ` +
            `${maxConcurrentCalls} concurrent calls (maxConcurrentCalls); retry when one ended`,
          1,
        );
      }
      const requests = counter(token, state, "requests-minute");
      if (maxRequestsPerMinute && requests.shared + requests.pending >= maxRequestsPerMinute) {
        throw refuse(
          `token "${token}" made ${requests.shared + requests.pending} requests this minute; its limit is ` +
            `${maxRequestsPerMinute} requests per minute (maxRequestsPerMinute)`,
          secondsLeft("requests-minute"),
        );
      }
      requests.pending++;
      state.inFlight++;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        state.inFlight--;
      };
    },
    chargeChars(token, chars) {
      const state = states.get(token);
      const max = state?.limits.maxCharsPerDay;
      if (!state || !max) return;
      const c = counter(token, state, "chars-day");
      const used = c.shared + c.pending;
      if (used + chars > max) {
        throw refuse(
          `token "${token}" has ${Math.max(0, max - used)} of its ${max} characters per day left ` +
            `(maxCharsPerDay) and this call has ${chars}`,
          secondsLeft("chars-day"),
        );
      }
      c.pending += chars;
    },
    flush,
    setLimits(limits) {
      setLimits(limits);
      if (started) this.start();
    },
    start() {
      started = true;
      if (!options.store || states.size === 0 || timer || closed) return;
      timer = setInterval(() => void flush(), flushIntervalMs);
      timer.unref();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      await flush();
    },
  };
}
