import { Code, ConnectError } from "@connectrpc/connect";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";

/** Caps on requests in flight (HTTP/1.1 requests and HTTP/2 streams) on a port. */
export interface StreamBudgetOptions {
  /** Requests in flight in all (setting maxStreams). */
  maxStreams: number;
  /**
   * Requests in flight that carry no token (open services: health checks and `Health/Watch`,
   * 404s) (setting maxUnauthenticatedStreams).
   */
  maxUnauthenticatedStreams: number;
}

/** Counts requests in flight and refuses those over a cap. */
export interface StreamBudget {
  /**
   * Counts `req` until its answer closes and returns true; or, over a cap, answers it
   * RESOURCE_EXHAUSTED naming the setting (through `writeError`, the route's own error format)
   * and returns false.
   */
  admit(
    req: NodeRequest,
    res: NodeResponse,
    authenticated: boolean,
    writeError: (req: NodeRequest, res: NodeResponse, error: ConnectError) => void,
  ): boolean;
  /** Requests in flight now. */
  readonly streams: number;
  /** Unauthenticated requests in flight now. */
  readonly unauthenticatedStreams: number;
}

/**
 * Creates a stream budget. Every stream costs memory for as long as it is open (a `Health/Watch`
 * costs ~47 KB and needs no token): 40 connections × 256 streams held 9,304 streams and 437 MB
 * before these caps.
 */
export function createStreamBudget(options: StreamBudgetOptions): StreamBudget {
  let streams = 0;
  let unauthenticated = 0;
  return {
    get streams() {
      return streams;
    },
    get unauthenticatedStreams() {
      return unauthenticated;
    },
    admit(req, res, authenticated, writeError) {
      if (streams >= options.maxStreams) {
        writeError(
          req,
          res,
          new ConnectError(
            `${streams} requests in flight on this port (max streams: VOXGATE_MAX_STREAMS)`,
            Code.ResourceExhausted,
          ),
        );
        return false;
      }
      if (!authenticated && unauthenticated >= options.maxUnauthenticatedStreams) {
        writeError(
          req,
          res,
          new ConnectError(
            `${unauthenticated} requests without a token in flight on this port ` +
              "(max unauthenticated streams: VOXGATE_MAX_UNAUTHENTICATED_STREAMS)",
            Code.ResourceExhausted,
          ),
        );
        return false;
      }
      streams++;
      if (!authenticated) unauthenticated++;
      res.once("close", () => {
        streams--;
        if (!authenticated) unauthenticated--;
      });
      return true;
    },
  };
}
