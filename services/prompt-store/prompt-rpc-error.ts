import { Code, ConnectError } from "@connectrpc/connect";
import { infrastructureErrorOf } from "../gateway/fault-interceptor.js";
import { isBlobKeyError, isBlobUrlTtlError } from "../object-store/blob-store.js";
import { isPromptStoreError, type PromptErrorKind } from "./prompt-errors.js";

const CODES: Record<PromptErrorKind, Code> = {
  "invalid-argument": Code.InvalidArgument,
  "not-found": Code.NotFound,
  "too-large": Code.ResourceExhausted,
  "failed-precondition": Code.FailedPrecondition,
  "data-loss": Code.DataLoss,
};

/**
 * Translates any prompt store failure into the ConnectError callers see: typed store errors get
 * their code and message; anything else (a storage outage, a bug) becomes UNAVAILABLE or INTERNAL
 * with a generic message, keeping the original as `cause` for the logs, so bucket names and
 * credentials never reach a caller.
 */
export function toPromptRpcError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (isPromptStoreError(err))
    return new ConnectError(err.message, CODES[err.kind], undefined, undefined, err);
  if (isBlobKeyError(err) || isBlobUrlTtlError(err)) {
    return new ConnectError(err.message, Code.InvalidArgument, undefined, undefined, err);
  }
  // Infrastructure faults keep their meaning (UNAVAILABLE / RESOURCE_EXHAUSTED) and safe text.
  const infrastructure = infrastructureErrorOf(err);
  if (infrastructure) return infrastructure;
  if ((err as { name?: string }).name === "AbortError") {
    return new ConnectError(
      "prompt transfer was cancelled",
      Code.Canceled,
      undefined,
      undefined,
      err,
    );
  }
  const transient = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|socket hang up|503|SlowDown/i.test(
    String((err as Error)?.message ?? ""),
  );
  return new ConnectError(
    transient ? "prompt storage is unavailable; retry later" : "prompt storage failed",
    transient ? Code.Unavailable : Code.Internal,
    undefined,
    undefined,
    err,
  );
}
