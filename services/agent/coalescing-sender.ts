/**
 * Merges consecutive responses of a stream into one message, for as long as the link cannot take
 * the next one anyway (a backend producing audio faster than the caller reads it).
 */
export interface ResponseCoalescer<T> {
  /**
   * Folds `next` into `held` (a value this coalescer made, or a plain response); undefined when
   * the two cannot travel as one message (another kind, or too big together).
   */
  merge(held: T, next: T): T | undefined;
  /** Turns a held value back into a response to send. */
  seal(held: T): T;
  /** Sees each response as it goes to the link (merged ones sealed first). */
  sending?(response: T): void;
}

/**
 * Sends every response of `source` in order through `send`, which resolves once the link takes
 * more (its backpressure). While a send is waiting, responses that arrive are merged by
 * `coalescer` instead of queued one by one: the link then carries fewer, larger messages exactly
 * when it is the bottleneck, and one response at a time otherwise. Nothing waits for a merge: a
 * held response leaves the moment the link is free, so latency never grows.
 *
 * Rejects with the first failed send (or the source's error).
 */
export async function sendCoalesced<T>(
  source: AsyncIterable<T>,
  send: (response: T) => Promise<void>,
  coalescer: ResponseCoalescer<T> | undefined,
): Promise<void> {
  if (!coalescer) {
    for await (const response of source) await send(response);
    return;
  }
  let busy = false;
  let held: T | undefined;
  let last: Promise<void> = Promise.resolve();
  const start = (response: T) => {
    coalescer.sending?.(response);
    busy = true;
    last = send(response).then(() => {
      busy = false;
      if (held !== undefined) {
        const next = coalescer.seal(held);
        held = undefined;
        start(next);
      }
    });
    // Awaited below where it matters; this only keeps a failed send from being "unhandled".
    last.catch(() => {});
  };
  // Invariant: something is held only while a send is in flight; the send's completion starts it.
  for await (const response of source) {
    if (held !== undefined) {
      const merged = coalescer.merge(held, response);
      if (merged !== undefined) {
        held = merged;
        continue;
      }
      // Cannot merge: wait until what is held has gone to the link.
      while (held !== undefined) await last;
    }
    // The link may have freed up while we waited (sends that do not block end in microtasks).
    if (busy) held = response;
    else start(response);
  }
  while (busy || held !== undefined) await last;
}
