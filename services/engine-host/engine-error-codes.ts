import { Code, ConnectError } from "@connectrpc/connect";
import {
  isEngineInputError,
  isEngineOverloadedError,
  isEngineUnavailableError,
  isSynthesisFailedError,
  isUnknownVoiceError,
} from "../engines/engine-errors.js";

/**
 * Turns an engine's typed error into the status the gateway acts on: UNAVAILABLE and
 * RESOURCE_EXHAUSTED let the registry try another backend; NOT_FOUND and INVALID_ARGUMENT go
 * straight back to the caller, since another backend would refuse them too. Anything else is
 * returned unchanged (Connect reports it as UNKNOWN, keeping the cause in logs).
 */
export function toEngineRpcError(err: unknown): unknown {
  if (err instanceof ConnectError) return err;
  if (isUnknownVoiceError(err))
    return new ConnectError(err.message, Code.NotFound, undefined, undefined, err);
  if (isEngineInputError(err))
    return new ConnectError(err.message, Code.InvalidArgument, undefined, undefined, err);
  if (isEngineOverloadedError(err))
    return new ConnectError(err.message, Code.ResourceExhausted, undefined, undefined, err);
  if (isEngineUnavailableError(err))
    return new ConnectError(err.message, Code.Unavailable, undefined, undefined, err);
  if (isSynthesisFailedError(err))
    return new ConnectError(err.message, Code.Internal, undefined, undefined, err);
  return err;
}
