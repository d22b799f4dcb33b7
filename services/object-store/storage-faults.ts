/** What is wrong with an object store that refuses writes. */
export type StorageFaultKind =
  /** No space left (ENOSPC) or over a quota (EDQUOT): RESOURCE_EXHAUSTED until space is freed. */
  | "full"
  /** The store is mounted read-only (EROFS) or refuses writes (EACCES/EPERM): UNAVAILABLE. */
  | "read-only";

/** A classified storage fault, with a message safe to show callers (no paths). */
export interface StorageFault {
  /** What is wrong. */
  kind: StorageFaultKind;
  /** Caller-facing message. */
  message: string;
}

const FULL = new Set(["ENOSPC", "EDQUOT"]);
const READ_ONLY = new Set(["EROFS", "EACCES", "EPERM"]);

/**
 * Classifies a filesystem error from an object store write; undefined for any other error.
 * Paths in the original message stay out of the result (they are kept as the `cause` in logs).
 */
export function storageFaultOf(err: unknown): StorageFault | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return undefined;
  if (FULL.has(code)) {
    return {
      kind: "full",
      message: `the object store is full (${code}: no space left); retry once space is freed`,
    };
  }
  if (READ_ONLY.has(code)) {
    return {
      kind: "read-only",
      message: `the object store refuses writes (${code}: read-only or not writable); retry later`,
    };
  }
  return undefined;
}
