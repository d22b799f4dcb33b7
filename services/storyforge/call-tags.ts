/**
 * Cloud's `job_id` on `/v1/tts` calls, so that `/v1/jobs/abort {job_id}` can stop every call of
 * that job still running on this gateway (Tinybox killed the job's subprocesses; voxgate cancels
 * the calls, which cancels the backend work through the registry).
 */

/** Running calls by Cloud job id. */
export interface CallTags {
  /**
   * Registers a call under `jobId` and returns its signal plus a `done` to call when it ends. An
   * empty `jobId` registers nothing (the signal then never fires from here).
   */
  track(jobId: string): { signal: AbortSignal; done(): void };
  /** Aborts every running call tagged `jobId`; resolves with how many there were. */
  abort(jobId: string, reason: Error): number;
  /** Calls running under `jobId`. */
  running(jobId: string): number;
}

/** Creates an empty tag table. */
export function createCallTags(): CallTags {
  const byJob = new Map<string, Set<AbortController>>();
  return {
    track(jobId) {
      const controller = new AbortController();
      if (!jobId) return { signal: controller.signal, done() {} };
      let set = byJob.get(jobId);
      if (!set) {
        set = new Set();
        byJob.set(jobId, set);
      }
      set.add(controller);
      return {
        signal: controller.signal,
        done() {
          const current = byJob.get(jobId);
          current?.delete(controller);
          if (current?.size === 0) byJob.delete(jobId);
        },
      };
    },
    abort(jobId, reason) {
      const set = byJob.get(jobId);
      if (!set) return 0;
      byJob.delete(jobId);
      for (const controller of set) controller.abort(reason);
      return set.size;
    },
    running: (jobId) => byJob.get(jobId)?.size ?? 0,
  };
}
