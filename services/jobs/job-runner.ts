import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { create, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { context as otelContext, ROOT_CONTEXT } from "@opentelemetry/api";
import type { Logger } from "pino";
import { JobOutputSchema } from "../../gen/voxgate/v1/job_pb.js";
import type { Scope } from "../auth/scopes.js";
import type { SettingValues } from "../config/settings.js";
import { infrastructureErrorOf } from "../gateway/fault-interceptor.js";
import type { BlobStore } from "../object-store/blob-store.js";
import { storageFaultOf } from "../object-store/storage-faults.js";
import { inSpan } from "../tracing/spans.js";
import { retryDelayMs } from "./job-backoff.js";
import { JobCancelledError, LeaseLostError, RunnerStoppingError } from "./job-errors.js";
import type { JobEvents } from "./job-events.js";
import type { JobContext, JobExecutor, JobResult } from "./job-executor.js";
import { jobKeyPrefix } from "./job-ids.js";
import { type JobRow, jobFromRow } from "./job-row.js";
import type { jobSettings } from "./job-settings.js";
import type { JobLease, JobStore } from "./job-store.js";

/** Timing and size of a runner; build it with {@link jobRunnerLimitsFromSettings}. */
export interface JobRunnerLimits {
  /** Jobs this runner works on at once (VOXGATE_JOB_CONCURRENCY). */
  concurrency: number;
  /** Length of a lease, in ms; a stopped runner's jobs are re-run after it (VOXGATE_JOB_LEASE_MS). */
  leaseMs: number;
  /** Interval of lease renewals, in ms (VOXGATE_JOB_HEARTBEAT_MS). */
  heartbeatMs: number;
  /** Interval of looking for runnable jobs when idle, in ms (VOXGATE_JOB_POLL_MS). */
  pollMs: number;
  /** Interval of checking held jobs for cancellation by another gateway, in ms (VOXGATE_JOB_CANCEL_POLL_MS). */
  cancelPollMs: number;
  /** Backoff before the second attempt, in ms; doubles per attempt (VOXGATE_JOB_RETRY_BASE_MS). */
  retryBaseMs: number;
  /** Longest backoff, in ms (VOXGATE_JOB_RETRY_MAX_MS). */
  retryMaxMs: number;
  /**
   * Runs ending UNAVAILABLE (no backend connected or all failing — e.g. agents still reconnecting
   * after a gateway restart) that are retried without using up an attempt
   * (VOXGATE_JOB_MAX_UNAVAILABLE_RETRIES).
   */
  maxUnavailableRetries: number;
  /** Longest backoff between such runs, in ms (VOXGATE_JOB_UNAVAILABLE_RETRY_MAX_MS). */
  unavailableRetryMaxMs: number;
}

/** {@link JobRunnerLimits} from the job settings of the same meaning. */
export function jobRunnerLimitsFromSettings(
  settings: Pick<
    SettingValues<typeof jobSettings>,
    | "jobConcurrency"
    | "jobLeaseMs"
    | "jobHeartbeatMs"
    | "jobPollMs"
    | "jobCancelPollMs"
    | "jobRetryBaseMs"
    | "jobRetryMaxMs"
    | "jobMaxUnavailableRetries"
    | "jobUnavailableRetryMaxMs"
  >,
): JobRunnerLimits {
  return {
    concurrency: settings.jobConcurrency,
    leaseMs: settings.jobLeaseMs,
    heartbeatMs: settings.jobHeartbeatMs,
    pollMs: settings.jobPollMs,
    cancelPollMs: settings.jobCancelPollMs,
    retryBaseMs: settings.jobRetryBaseMs,
    retryMaxMs: settings.jobRetryMaxMs,
    maxUnavailableRetries: settings.jobMaxUnavailableRetries,
    unavailableRetryMaxMs: settings.jobUnavailableRetryMaxMs,
  };
}

/** Options of {@link createJobRunner}. */
export interface JobRunnerOptions {
  /** The job store. */
  store: JobStore;
  /** One executor per job kind this runner takes; it claims no other kinds. */
  executors: readonly JobExecutor[];
  /** Object store handed to executors. */
  blobs: BlobStore;
  /** Root logger. */
  log: Logger;
  /** Local events: new jobs wake the runner, cancels abort at once. */
  events?: JobEvents;
  /** Runner id written into leases. @default `<host>:<pid>:<random>` */
  runnerId?: string;
  /** Timing: the job settings (see {@link jobRunnerLimitsFromSettings}). */
  limits: JobRunnerLimits;
}

/** Where a runner is in its life. */
export type JobRunnerState = "INITIALIZED" | "RUNNING" | "DRAINING" | "STOPPING" | "STOPPED";

/**
 * Claims jobs from the shared table and runs them with their executors, holding a lease on each:
 * heartbeats renew it, and any write after it was lost (another runner re-claimed the job) or the
 * job was cancelled matches no row, which aborts the executor's signal.
 */
export interface JobRunner {
  /** Runner id, random per process. */
  readonly id: string;
  /** Current state. */
  readonly state: JobRunnerState;
  /** Jobs running now. */
  readonly inFlight: number;
  /** Ids of the jobs running now. */
  readonly runningJobIds: string[];
  /** Starts claiming; jobs whose lease expired (a killed gateway's) are picked up first. */
  start(): void;
  /**
   * Stops claiming, aborts running executors and gives their jobs back (queued again, the attempt
   * not counted) so another gateway resumes them; idempotent.
   */
  shutdown(): Promise<void>;
  /**
   * Winds down for a gateway restart: claims nothing more, and each running job finishes the
   * pieces it has started (segments, items), keeps their checkpoints and is given back (queued
   * again, the attempt not counted), so another gateway resumes it at once, not after its lease.
   * Resolves when no job runs here; {@link shutdown} still ends what is left. Idempotent.
   */
  drain(): Promise<void>;
}

interface Run {
  lease: JobLease;
  controller: AbortController;
  /** Aborted by {@link JobRunner.drain}: the executor starts no new piece of work. */
  windDown: AbortController;
  done: Promise<void>;
}

// Codes that retrying cannot fix: the spec or the world is wrong, not a backend for a moment.
const FINAL_CODES: ReadonlySet<Code> = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.FailedPrecondition,
  Code.PermissionDenied,
  Code.Unauthenticated,
  Code.Unimplemented,
  Code.OutOfRange,
  Code.AlreadyExists,
]);

const MAX_PROGRESS_MESSAGE_CHARS = 1000;
const MAX_ERROR_MESSAGE_CHARS = 2000;
const PERSIST_TRIES = 5;

/** Makes a runner id: host, pid and 64 random bits, so two processes never share one. */
export function newRunnerId(): string {
  return `${hostname().slice(0, 40)}:${process.pid}:${randomBytes(8).toString("hex")}`;
}

/** Creates a runner; nothing happens until {@link JobRunner.start}. */
export function createJobRunner(options: JobRunnerOptions): JobRunner {
  const { limits } = options;
  const id = options.runnerId ?? newRunnerId();
  const log = options.log.child({ component: "job-runner", runnerId: id });
  const { store, blobs } = options;
  const executors = new Map(options.executors.map((e) => [e.kind as string, e]));
  const kinds = [...executors.keys()];
  const runs = new Map<string, Run>();
  let state: JobRunnerState = "INITIALIZED";
  let wakeLoop: (() => void) | undefined;
  let loopDone: Promise<void> = Promise.resolve();
  let cancelTimer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  let stopping: Promise<void> | undefined;

  // A wake that comes while the loop is busy claiming is kept, so the next sleep ends at once.
  let wakePending = false;
  const wake = () => {
    const w = wakeLoop;
    wakeLoop = undefined;
    if (w) w();
    else wakePending = true;
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (wakePending || ms === 0) {
        wakePending = false;
        return resolve();
      }
      const timer = setTimeout(() => {
        wakeLoop = undefined;
        resolve();
      }, ms);
      wakeLoop = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const checkLeases = async () => {
    if (runs.size === 0) return;
    const asked = [...runs.values()];
    const status = await store.leaseStatus(asked.map((r) => r.lease.jobId));
    // Only the runs asked about: one claimed while the query ran is not in its answer.
    for (const run of asked) {
      const jobId = run.lease.jobId;
      const s = status.get(jobId);
      if (s?.state === "CANCELLED") {
        run.controller.abort(new JobCancelledError(`job ${jobId} was cancelled`));
      } else if (
        s?.state !== "RUNNING" ||
        s.leaseOwner !== id ||
        s.attempts !== run.lease.attempt
      ) {
        run.controller.abort(new LeaseLostError(`runner ${id} lost the lease of job ${jobId}`));
      }
    }
  };

  const execute = async (
    row: JobRow,
    lease: JobLease,
    controller: AbortController,
    windDown: AbortSignal,
  ) => {
    const { signal } = controller;
    const jobLog = log.child({ jobId: row.id, attempt: lease.attempt, kind: row.kind });
    const executor = executors.get(row.kind);
    const heartbeat = setInterval(() => {
      store.heartbeat(lease, limits.leaseMs).then(
        (held) => {
          if (!held) {
            controller.abort(new LeaseLostError(`runner ${id} lost the lease of job ${row.id}`));
          }
        },
        (err: unknown) => jobLog.warn({ err }, "lease heartbeat failed"),
      );
    }, limits.heartbeatMs);
    const context: JobContext = {
      signal,
      windDown,
      log: jobLog,
      blobs,
      keyPrefix: jobKeyPrefix(row.id),
      // `owner` is the creating token's tenant; the job acts as that tenant with the scopes the
      // token had.
      owner: { name: row.owner, tenant: row.owner, scopes: new Set(row.owner_scopes as Scope[]) },
      async reportProgress(done, total, message) {
        signal.throwIfAborted();
        const held = await store.progress(
          lease,
          done,
          total,
          message.slice(0, MAX_PROGRESS_MESSAGE_CHARS),
        );
        if (!held) {
          await checkLeases().catch(() => {});
          controller.abort(new LeaseLostError(`runner ${id} lost the lease of job ${row.id}`));
          signal.throwIfAborted();
        }
      },
    };
    jobLog.info("job started");
    try {
      let result: JobResult;
      try {
        if (!executor) throw new ConnectError(`no executor for ${row.kind}`, Code.Unimplemented);
        // A job runs apart from the call that created it: its run is the root of its own trace.
        result = await otelContext.with(ROOT_CONTEXT, () =>
          inSpan(
            "voxgate.job",
            {
              "voxgate.job.id": row.id,
              "voxgate.job.kind": row.kind,
              "voxgate.job.attempt": lease.attempt,
            },
            () => executor.run(jobFromRow(row), context),
          ),
        );
      } catch (err) {
        if (signal.aborted) return await settleAborted(lease, signal.reason, jobLog);
        // Wound down by a drain: what it finished is checkpointed, the rest is for the next runner.
        if (err instanceof RunnerStoppingError) return await settleAborted(lease, err, jobLog);
        await persist(() => recordFailure(row, lease, err, jobLog), jobLog);
        return;
      }
      if (signal.aborted) return await settleAborted(lease, signal.reason, jobLog);
      const output = toJson(JobOutputSchema, create(JobOutputSchema, result.output));
      const completed = await persist(
        () => store.complete(lease, output, result.outputKey),
        jobLog,
      );
      if (completed) jobLog.info({ outputKey: result.outputKey }, "job succeeded");
      else jobLog.warn("lease lost before the job completed; its result is dropped");
    } finally {
      clearInterval(heartbeat);
    }
  };

  const recordFailure = async (row: JobRow, lease: JobLease, err: unknown, jobLog: Logger) => {
    const error = infrastructureErrorOf(err) ?? ConnectError.from(err);
    const message = error.rawMessage.slice(0, MAX_ERROR_MESSAGE_CHARS);
    // A full or read-only store is fixed by an operator, not by a retry: the job waits for it
    // without using up attempts (cancel it to give up), instead of burning them in seconds.
    const fault = storageFaultOf(err) ?? storageFaultOf((err as { cause?: unknown })?.cause);
    if (fault) {
      const waitMs = retryDelayMs(2, {
        baseMs: Math.min(limits.retryMaxMs, limits.unavailableRetryMaxMs),
        maxMs: Math.min(limits.retryMaxMs, limits.unavailableRetryMaxMs),
      });
      jobLog.warn(
        { err, delayMs: waitMs, fault: fault.kind },
        "object store refuses writes; waiting without counting the attempt",
      );
      return store.retry(lease, waitMs, error.code, message, {
        refundAttempt: true,
        countRefund: false,
      });
    }
    if (error.code === Code.Unavailable && row.unavailable_retries < limits.maxUnavailableRetries) {
      const waitMs = retryDelayMs(row.unavailable_retries + 1, {
        baseMs: limits.retryBaseMs,
        maxMs: Math.min(limits.retryMaxMs, limits.unavailableRetryMaxMs),
      });
      jobLog.warn(
        { err, delayMs: waitMs, unavailableRetries: row.unavailable_retries + 1 },
        "no backend could take the job; retrying without counting the attempt",
      );
      return store.retry(lease, waitMs, error.code, message, { refundAttempt: true });
    }
    if (FINAL_CODES.has(error.code) || lease.attempt >= row.max_attempts) {
      const suffix = FINAL_CODES.has(error.code)
        ? ""
        : ` (attempt ${lease.attempt} of ${row.max_attempts}, VOXGATE_JOB_MAX_ATTEMPTS)`;
      jobLog.warn({ err }, "job failed");
      return store.fail(lease, error.code, message + suffix);
    }
    const delayMs = retryDelayMs(lease.attempt, {
      baseMs: limits.retryBaseMs,
      maxMs: limits.retryMaxMs,
    });
    jobLog.warn({ err, delayMs }, "job attempt failed; retrying after backoff");
    return store.retry(lease, delayMs, error.code, message);
  };

  /**
   * Runs a fenced write, trying again when the database fails for a moment (a pool timeout on a
   * loaded server): the run's outcome must not be mistaken for the job's. The fence makes a repeat
   * harmless. When every try fails the lease runs out and another run redoes the job.
   */
  const persist = async (write: () => Promise<boolean>, jobLog: Logger): Promise<boolean> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (attempt >= PERSIST_TRIES) {
          jobLog.error(
            { err },
            "recording the job's outcome failed; it runs again after its lease",
          );
          return false;
        }
        jobLog.warn({ err, attempt }, "recording the job's outcome failed; trying again");
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  };

  const settleAborted = async (lease: JobLease, reason: unknown, jobLog: Logger) => {
    if (reason instanceof RunnerStoppingError) {
      const released = await store.release(lease);
      jobLog.info({ released }, "job given back at shutdown");
    } else if (reason instanceof LeaseLostError) {
      jobLog.warn("job stopped: this runner lost its lease (another runner has the job)");
    } else {
      jobLog.info({ reason: String(reason) }, "job stopped");
    }
  };

  const startRun = (row: JobRow) => {
    const lease: JobLease = { jobId: row.id, runnerId: id, attempt: row.attempts };
    const controller = new AbortController();
    const windDown = new AbortController();
    // Claimed as a drain began: start nothing, give it straight back.
    if (state !== "RUNNING") windDown.abort(new RunnerStoppingError(`runner ${id} is draining`));
    const run: Run = {
      lease,
      controller,
      windDown,
      done: execute(row, lease, controller, windDown.signal)
        .catch((err: unknown) => log.error({ err, jobId: row.id }, "job bookkeeping failed"))
        .finally(() => {
          runs.delete(row.id);
          wake();
        }),
    };
    runs.set(row.id, run);
  };

  const loop = async () => {
    let sweepAt = 0;
    while (state === "RUNNING") {
      let more = false;
      try {
        if (Date.now() >= sweepAt) {
          sweepAt = Date.now() + limits.pollMs;
          await store.failExhausted();
        }
        const free = limits.concurrency - runs.size;
        if (free > 0) {
          const rows = await store.claim({
            runnerId: id,
            kinds,
            limit: free,
            leaseMs: limits.leaseMs,
          });
          for (const row of rows) {
            if (state === "RUNNING") {
              startRun(row);
            } else {
              // Claimed while shutdown began: give it back now rather than after the lease.
              await store.release({ jobId: row.id, runnerId: id, attempt: row.attempts });
            }
          }
          more = rows.length === free;
        }
      } catch (err) {
        log.warn({ err }, "claiming jobs failed");
      }
      // A full batch means more may be waiting: claim again as soon as a slot frees.
      if (state === "RUNNING")
        await sleep(more && runs.size < limits.concurrency ? 0 : limits.pollMs);
    }
  };

  return {
    id,
    get state() {
      return state;
    },
    get inFlight() {
      return runs.size;
    },
    get runningJobIds() {
      return [...runs.keys()];
    },
    start() {
      if (state !== "INITIALIZED") return;
      state = "RUNNING";
      unsubscribe = options.events?.subscribe((type, jobId) => {
        if (type === "created") wake();
        if (type === "cancelled") {
          runs.get(jobId)?.controller.abort(new JobCancelledError(`job ${jobId} was cancelled`));
        }
      });
      cancelTimer = setInterval(() => {
        checkLeases().catch((err: unknown) => log.warn({ err }, "checking leases failed"));
      }, limits.cancelPollMs);
      loopDone = loop();
      log.info({ kinds, ...limits }, "job runner started");
    },
    drain() {
      if (state === "RUNNING") {
        state = "DRAINING";
        wake();
        for (const run of runs.values()) {
          run.windDown.abort(new RunnerStoppingError(`runner ${id} is draining`));
        }
        log.info(
          { jobs: [...runs.keys()] },
          "job runner draining: running jobs finish their pieces",
        );
      }
      return (async () => {
        await loopDone;
        while (runs.size > 0) await Promise.all([...runs.values()].map((r) => r.done));
      })();
    },
    shutdown() {
      stopping ??= (async () => {
        const wasRunning = state === "RUNNING" || state === "DRAINING";
        state = "STOPPING";
        unsubscribe?.();
        clearInterval(cancelTimer);
        wake();
        for (const run of runs.values()) {
          run.controller.abort(new RunnerStoppingError(`runner ${id} is shutting down`));
        }
        await loopDone;
        await Promise.all([...runs.values()].map((r) => r.done));
        state = "STOPPED";
        if (wasRunning) log.info("job runner stopped");
      })();
      return stopping;
    },
  };
}
