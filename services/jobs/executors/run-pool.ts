/**
 * Runs `work` on each item with at most `concurrency` at once, taking items in order. The first
 * failure aborts the signal given to the others and is thrown once they all ended, so no work is
 * left running behind the caller's back.
 *
 * With `windDown` aborted no further item is taken: those running finish, then its reason is
 * thrown if any item was left.
 *
 * @throws the reason of `signal` when it aborted; else the first error of `work`; else the reason
 *   of `windDown` when items were left.
 */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  signal: AbortSignal,
  work: (item: T, signal: AbortSignal) => Promise<void>,
  windDown?: AbortSignal,
): Promise<void> {
  signal.throwIfAborted();
  let left = items.length;
  const failed = new AbortController();
  const linked = AbortSignal.any([signal, failed.signal]);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    // A wind-down stops taking items; those already taken finish.
    while (!linked.aborted && !windDown?.aborted) {
      const index = next++;
      const item = items[index];
      if (index >= items.length || item === undefined) return;
      try {
        await work(item, linked);
        left--;
      } catch (error) {
        failure ??= { error };
        failed.abort(error);
        return;
      }
    }
  };
  const workers = Math.max(1, Math.min(concurrency, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
  // A cancelled job reports its cancellation, not the calls that the abort made fail.
  signal.throwIfAborted();
  if (failure) throw failure.error;
  // Items were left for whoever resumes the job.
  if (left > 0 && windDown?.aborted) throw windDown.reason;
}
