import { BreakerState } from "../../gen/voxgate/v1/backend_admin_pb.js";

/**
 * Options of {@link createCircuitBreaker}. The numbers are gateway settings (the `breaker…` rows of
 * README: Settings); they have no default here.
 */
export interface CircuitBreakerOptions {
  /** Consecutive failed calls that open the breaker (setting breakerFailureThreshold). */
  failureThreshold: number;
  /**
   * Share of failed calls among the last `windowCalls` that opens the breaker (0-1]; it applies once
   * the window is full, so a backend failing every other call is ejected too (setting
   * breakerFailurePercent / 100).
   */
  failureRatio: number;
  /** Calls the failure ratio is measured over (setting breakerWindowCalls). */
  windowCalls: number;
  /**
   * Time an open breaker refuses calls before it lets a trial call through, in ms (setting
   * breakerCooldownMs).
   */
  cooldownMs: number;
  /** Successful trial calls in a row that close a half-open breaker (setting breakerHalfOpenSuccesses). */
  halfOpenSuccesses: number;
  /** Clock, in ms. @default Date.now */
  now?: () => number;
}

/** A breaker state change, for logs and watchers. */
export interface BreakerTransition {
  /** State after the change. */
  state: BreakerState;
  /** Why, for people. */
  reason: string;
}

/** One call let through by a breaker. */
export interface BreakerTicket {
  /** Whether it is a half-open trial call (only those decide a half-open breaker). */
  readonly trial: boolean;
}

/**
 * A per-backend circuit breaker: closed lets calls through; failures (in a row, or as a share of
 * recent calls) open it; an open breaker refuses calls until its cooldown ends, then turns
 * half-open and lets one trial call at a time through; enough successful trials close it, a failed
 * one opens it again.
 */
export interface CircuitBreaker {
  /** Current state; an open breaker whose cooldown ended reads as half-open. */
  readonly state: BreakerState;
  /** Whether a new call may go through now (half-open: only when no trial is running). */
  allows(): boolean;
  /** Records that a call went through; pair it with exactly one {@link settle}. */
  enter(): BreakerTicket;
  /**
   * Records how an entered call ended: `success`, `failure` (the backend's fault) or `neutral`
   * (neither, e.g. the caller left). Returns the state change it caused, if any.
   */
  settle(
    ticket: BreakerTicket,
    result: "success" | "failure" | "neutral",
    error?: string,
  ): BreakerTransition | undefined;
  /** Closes the breaker and forgets the history (a new agent session). */
  reset(): void;
}

/** Creates a closed circuit breaker. */
export function createCircuitBreaker(options: CircuitBreakerOptions): CircuitBreaker {
  const failureThreshold = Math.max(1, options.failureThreshold);
  const { failureRatio, cooldownMs } = options;
  const windowCalls = Math.max(1, options.windowCalls);
  const halfOpenSuccesses = Math.max(1, options.halfOpenSuccesses);
  const now = options.now ?? Date.now;

  let state: BreakerState = BreakerState.CLOSED;
  let openedAt = 0;
  let consecutiveFailures = 0;
  let trialSuccesses = 0;
  let trialsRunning = 0;
  // Recent outcomes, true = failure; only closed-state calls count.
  let window: boolean[] = [];

  const current = (): BreakerState => {
    if (state === BreakerState.OPEN && now() - openedAt >= cooldownMs) {
      state = BreakerState.HALF_OPEN;
      trialSuccesses = 0;
      trialsRunning = 0;
    }
    return state;
  };

  const open = (reason: string): BreakerTransition => {
    state = BreakerState.OPEN;
    openedAt = now();
    consecutiveFailures = 0;
    window = [];
    return { state, reason: `breaker opened: ${reason}; cooldown ${cooldownMs} ms` };
  };

  return {
    get state() {
      return current();
    },
    allows() {
      const s = current();
      return s === BreakerState.CLOSED || (s === BreakerState.HALF_OPEN && trialsRunning === 0);
    },
    enter() {
      const trial = current() === BreakerState.HALF_OPEN;
      if (trial) trialsRunning++;
      return { trial };
    },
    settle(ticket, result, error) {
      const why = error ? `: ${error}` : "";
      if (ticket.trial) {
        // A trial that settles after the breaker moved on (reset, reopened) decides nothing.
        if (current() !== BreakerState.HALF_OPEN) return undefined;
        trialsRunning = Math.max(0, trialsRunning - 1);
        if (result === "failure") return open(`trial call failed${why}`);
        if (result === "success" && ++trialSuccesses >= halfOpenSuccesses) {
          state = BreakerState.CLOSED;
          consecutiveFailures = 0;
          window = [];
          return { state, reason: `breaker closed after ${trialSuccesses} successful trial calls` };
        }
        return undefined;
      }
      if (state !== BreakerState.CLOSED || result === "neutral") return undefined;
      const failed = result === "failure";
      consecutiveFailures = failed ? consecutiveFailures + 1 : 0;
      window.push(failed);
      if (window.length > windowCalls) window.shift();
      if (consecutiveFailures >= failureThreshold) {
        return open(`${consecutiveFailures} calls in a row failed${why}`);
      }
      const failures = window.filter(Boolean).length;
      if (window.length >= windowCalls && failures / window.length >= failureRatio) {
        return open(`${failures} of the last ${window.length} calls failed${why}`);
      }
      return undefined;
    },
    reset() {
      state = BreakerState.CLOSED;
      consecutiveFailures = 0;
      trialSuccesses = 0;
      trialsRunning = 0;
      window = [];
    },
  };
}
