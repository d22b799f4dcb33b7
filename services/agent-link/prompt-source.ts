/** A clone prompt opened for reading by a {@link PromptSource}. */
export interface OpenedPrompt {
  /** Size of the prompt, in bytes. */
  sizeBytes: number;
  /** The prompt's bytes, in order, in pieces of any size. */
  chunks: AsyncIterable<Uint8Array>;
}

/**
 * Where the gateway reads the clone prompts it streams to agents: the prompt store, behind this
 * narrow seam so the agent link does not depend on a storage backend.
 */
export interface PromptSource {
  /**
   * Opens the prompt with `digest` (lowercase hex sha256, already checked for shape). Rejects with
   * a ConnectError: NOT_FOUND when the store has no such prompt, DATA_LOSS when it fails its
   * integrity check. Stops reading when `signal` aborts.
   */
  open(digest: string, signal: AbortSignal): Promise<OpenedPrompt>;
}
