/** What happened to a job, as told on this gateway. */
export type JobEventType = "changed" | "created" | "cancelled";

/** A listener of {@link JobEvents}. */
export type JobEventListener = (type: JobEventType, jobId: string) => void;

/**
 * In-process fan-out of job changes. Writes on this gateway reach its watchers and runner at once;
 * changes made by another gateway are found by polling the database, so this hub is an
 * accelerator, never the source of truth.
 */
export interface JobEvents {
  /** Tells listeners and waiters that `jobId` changed (or was created or cancelled). */
  emit(type: JobEventType, jobId: string): void;
  /** Adds a listener of every event; returns the function that removes it. */
  subscribe(listener: JobEventListener): () => void;
  /**
   * Resolves on the next event of `jobId`, after `timeoutMs`, or when `signal` aborts, whichever
   * comes first; it never rejects.
   */
  waitForChange(jobId: string, timeoutMs: number, signal?: AbortSignal): Promise<void>;
}

/** Creates an empty hub. */
export function createJobEvents(): JobEvents {
  const listeners = new Set<JobEventListener>();
  const waiters = new Map<string, Set<() => void>>();
  return {
    emit(type, jobId) {
      const forJob = waiters.get(jobId);
      if (forJob) {
        waiters.delete(jobId);
        for (const wake of forJob) wake();
      }
      for (const listener of listeners) listener(type, jobId);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    waitForChange(jobId, timeoutMs, signal) {
      return new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        let set = waiters.get(jobId);
        if (!set) {
          set = new Set();
          waiters.set(jobId, set);
        }
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", done);
          const current = waiters.get(jobId);
          current?.delete(done);
          if (current?.size === 0) waiters.delete(jobId);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        signal?.addEventListener("abort", done, { once: true });
        set.add(done);
      });
    },
  };
}
