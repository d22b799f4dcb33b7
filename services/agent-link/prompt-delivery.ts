import type { Writable } from "node:stream";
import { writeWithBackpressure } from "../grpc/write-with-backpressure.js";
import type { PromptSource } from "./prompt-source.js";

/**
 * Which clone prompts one call's agent may fetch: exactly the digests its own requests refer to,
 * each once. An agent can thus never read a prompt by guessing a digest, nor re-read one to
 * stretch a call.
 */
export interface PromptGrant {
  /** Allows the digests a request sent to the agent refers to. */
  allow(digests: readonly string[]): void;
  /**
   * Takes the grant of `digest` for one delivery: undefined when allowed, else why not (for the
   * PERMISSION_DENIED the agent gets and the log).
   */
  take(digest: string): string | undefined;
  /** Digests allowed but never taken: the agent had them cached. */
  untaken(): string[];
}

/** Creates the fetch grant of one call. */
export function createPromptGrant(): PromptGrant {
  const allowed = new Set<string>();
  const taken = new Set<string>();
  return {
    allow(digests) {
      for (const digest of digests) allowed.add(digest);
    },
    take(digest) {
      if (!allowed.has(digest)) return "is not referenced by the call";
      if (taken.has(digest)) return "was already sent on this call";
      taken.add(digest);
      return undefined;
    },
    untaken: () => [...allowed].filter((digest) => !taken.has(digest)),
  };
}

/** Options of {@link deliverPrompt}. */
export interface DeliverPromptOptions {
  /** The call stream to the agent (a grpc-js server duplex, in object mode). */
  stream: Writable;
  /** Where the prompt's bytes come from. */
  source: PromptSource;
  /** Prompt to send. */
  digest: string;
  /** Largest `data` per prompt_chunk message, in bytes (below the agent link's message limit). */
  chunkBytes: number;
  /** Stops the delivery (the call ended). */
  signal: AbortSignal;
}

/**
 * Streams one prompt to an agent as `prompt_chunk` messages of at most `chunkBytes`, the last one
 * flagged `last`, waiting for HTTP/2 flow control between writes so a 50 MB prompt never sits in
 * memory whole. Resolves with the bytes sent; rejects with the source's error.
 */
export async function deliverPrompt(options: DeliverPromptOptions): Promise<number> {
  const { stream, digest, signal } = options;
  const chunkBytes = Math.max(1, options.chunkBytes);
  const opened = await options.source.open(digest, signal);
  let sent = 0;
  // One slice is held back so the final message can carry `last` without an empty extra message.
  let held: Uint8Array | undefined;
  const send = async (data: Uint8Array, last: boolean) => {
    signal.throwIfAborted();
    await writeWithBackpressure(stream, {
      kind: { case: "promptChunk", value: { digest, data, last } },
    });
    sent += data.byteLength;
  };
  for await (const piece of opened.chunks) {
    for (let offset = 0; offset < piece.byteLength; offset += chunkBytes) {
      if (held) await send(held, false);
      held = piece.subarray(offset, offset + chunkBytes);
    }
  }
  await send(held ?? new Uint8Array(0), true);
  return sent;
}
