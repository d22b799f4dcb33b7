/**
 * Why a job's `JobContext.signal` aborted. Executors need not tell them apart (they stop either
 * way); the runner does: a cancelled job stays cancelled, a lost lease is someone else's now, and a
 * job given back at shutdown is queued again without losing an attempt.
 */

/** The job was cancelled (CancelJob on any gateway). */
export class JobCancelledError extends Error {
  override readonly name = "JobCancelledError";
}

/** The runner lost the job's lease (it expired and another runner claimed the job). */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

/** The runner is shutting down and gives the job back. */
export class RunnerStoppingError extends Error {
  override readonly name = "RunnerStoppingError";
}

/** Returns whether `err` is a {@link JobCancelledError}. */
export function isJobCancelledError(err: unknown): err is JobCancelledError {
  return err instanceof JobCancelledError;
}

/** Returns whether `err` is a {@link LeaseLostError}. */
export function isLeaseLostError(err: unknown): err is LeaseLostError {
  return err instanceof LeaseLostError;
}

/** Returns whether `err` is a {@link RunnerStoppingError}. */
export function isRunnerStoppingError(err: unknown): err is RunnerStoppingError {
  return err instanceof RunnerStoppingError;
}
