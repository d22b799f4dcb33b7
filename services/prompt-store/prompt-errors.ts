/** Why a prompt store operation failed; the RPC edge maps each kind to one gRPC code. */
export type PromptErrorKind =
  /** A digest, page token or metadata field is malformed (INVALID_ARGUMENT). */
  | "invalid-argument"
  /** No prompt has that digest (NOT_FOUND). */
  | "not-found"
  /** The upload passed a configured limit (RESOURCE_EXHAUSTED). */
  | "too-large"
  /** The prompt is in use and cannot go yet, e.g. a voice speaks with it (FAILED_PRECONDITION). */
  | "failed-precondition"
  /** Stored bytes no longer match their digest, or a blob vanished under its metadata (DATA_LOSS). */
  | "data-loss";

/** A prompt store failure with a {@link PromptErrorKind}; messages are safe to show callers. */
export class PromptStoreError extends Error {
  override readonly name = "PromptStoreError";
  /** Creates the error. */
  constructor(
    /** What went wrong. */
    readonly kind: PromptErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Returns whether `err` is a {@link PromptStoreError}, optionally of `kind`. */
export function isPromptStoreError(err: unknown, kind?: PromptErrorKind): err is PromptStoreError {
  return err instanceof PromptStoreError && (kind === undefined || err.kind === kind);
}
