import { createContextKey } from "@connectrpc/connect";

/** A clone prompt a call refers to, as the engine host asks for it. */
export interface ClonePromptWanted {
  /** Lowercase hex sha256 of the prompt bytes (already checked for shape). */
  digest: string;
  /** Size the caller declared, in bytes; the bytes must have exactly this size. */
  sizeBytes: number;
}

/**
 * Where the engine host gets the bytes of a clone prompt for one call. On an agent it is the
 * on-disk cache, falling back to the gateway streaming the prompt over the call's own stream; the
 * bytes it resolves with have been checked against `digest` and `sizeBytes`.
 */
export interface ClonePromptSource {
  /**
   * Resolves with the prompt's bytes. Rejects with DATA_LOSS when the bytes do not match the
   * digest or size, and with the abort reason when `signal` fires.
   */
  get(prompt: ClonePromptWanted, signal: AbortSignal): Promise<Uint8Array>;
}

/**
 * Context key of the per-call {@link ClonePromptSource}. The agent's call dispatcher sets it for
 * every call; without it (an engine host served without an agent) calls with clone prompts fail
 * with FAILED_PRECONDITION.
 */
export const kClonePromptSource = createContextKey<ClonePromptSource | undefined>(undefined, {
  description: "clone prompt source of the call",
});
