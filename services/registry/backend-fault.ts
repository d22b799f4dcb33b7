import { Code } from "@connectrpc/connect";

/**
 * Whether a call that ended with `code` counts against the backend's health: its own failures do
 * (unavailable, internal, overloaded, too slow), the caller's mistakes and cancellations do not.
 */
export function isBackendFault(code: Code): boolean {
  switch (code) {
    case Code.Unavailable:
    case Code.Internal:
    case Code.Unknown:
    case Code.DataLoss:
    case Code.Aborted:
    case Code.ResourceExhausted:
    case Code.DeadlineExceeded:
      return true;
    default:
      return false;
  }
}
