import { once } from "node:events";
import type { Writable } from "node:stream";

/**
 * Writes `value` to an object-mode stream (a grpc-js call) and waits for `drain` when its buffer is
 * full, so a slow peer slows the producer instead of growing memory without bound.
 * Rejects when the stream is closed, or closes before draining.
 */
export async function writeWithBackpressure(stream: Writable, value: unknown): Promise<void> {
  if (stream.destroyed || stream.writableEnded) {
    throw new Error("stream is closed");
  }
  if (stream.write(value)) return;
  // Remove whichever listener lost the race, or they pile up on long streams.
  const loser = new AbortController();
  try {
    await Promise.race([
      once(stream, "drain", { signal: loser.signal }),
      once(stream, "close", { signal: loser.signal }).then(() => {
        throw new Error("stream closed while waiting to drain");
      }),
    ]);
  } finally {
    loser.abort();
  }
}
