import { type Code, createContextKey } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Principal } from "../auth/token-store.js";

/** Per-call facts every handler may need: who calls, the request id, a logger bound to both. */
export interface CallContext {
  /** Request id (also in the `x-request-id` response header). */
  requestId: string;
  /** Caller; undefined for open services. */
  principal: Principal | undefined;
  /** Logger with `requestId` bound. */
  log: Logger;
  /** The caller's IP address as the gateway saw it, for the access log; absent in process. */
  clientAddress?: string;
}

/** Context key of {@link CallContext}; the gateway fills it for every public call. */
export const kCallContext = createContextKey<CallContext | undefined>(undefined, {
  description: "voxgate call context",
});

/**
 * Context key of the outcome codes an in-process call expects as a normal answer (e.g. NOT_FOUND
 * when a frontend asks whether a voice exists); the call log writes those at debug level, so a
 * lookup that is part of serving a request does not look like a failed call.
 */
export const kExpectedCodes = createContextKey<readonly Code[]>([], {
  description: "voxgate codes an internal call expects",
});
