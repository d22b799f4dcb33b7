import { Code, ConnectError } from "@connectrpc/connect";
import { gatewaySettings } from "../gateway/gateway-settings.js";
import type { AcceptedCall } from "./agent-streams.js";

interface PendingCall {
  sessionId: string;
  resolve(call: AcceptedCall): void;
  reject(error: ConnectError): void;
}

/** Options of {@link createCallBroker}. */
export interface CallBrokerOptions {
  /**
   * How long an agent may take to open the call stream for an offer.
   * @default setting agentAcceptTimeoutMs
   */
  acceptTimeoutMs?: number;
}

/**
 * Matches work offers with the call streams agents open in answer. An agent can only take a call
 * offered to its own session, so one agent cannot read another's work.
 */
export interface CallBroker {
  /** Waits for `sessionId` to open the stream for `callId`; rejects on timeout or abort. */
  expect(sessionId: string, callId: string, signal: AbortSignal): Promise<AcceptedCall>;
  /** Hands an opened stream to its waiting call; false when no such call awaits this session. */
  accept(sessionId: string, callId: string, call: AcceptedCall): boolean;
  /** Fails every call still waiting on a session that ended. */
  failSession(sessionId: string, error: ConnectError): void;
}

/** Creates a call broker. */
export function createCallBroker(options: CallBrokerOptions = {}): CallBroker {
  const acceptTimeoutMs =
    options.acceptTimeoutMs ?? gatewaySettings.agentAcceptTimeoutMs.defaultValue;
  const pending = new Map<string, PendingCall>();
  return {
    expect(sessionId, callId, signal) {
      return new Promise<AcceptedCall>((resolve, reject) => {
        const cleanup = () => {
          pending.delete(callId);
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
        };
        const onAbort = () => {
          cleanup();
          reject(ConnectError.from(signal.reason, Code.Canceled));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new ConnectError(
              `agent did not open the call stream within ${acceptTimeoutMs} ms`,
              Code.Unavailable,
            ),
          );
        }, acceptTimeoutMs);
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        pending.set(callId, {
          sessionId,
          resolve: (call) => {
            cleanup();
            resolve(call);
          },
          reject: (error) => {
            cleanup();
            reject(error);
          },
        });
      });
    },
    accept(sessionId, callId, call) {
      const waiting = pending.get(callId);
      if (!waiting || waiting.sessionId !== sessionId) return false;
      waiting.resolve(call);
      return true;
    },
    failSession(sessionId, error) {
      for (const waiting of [...pending.values()]) {
        if (waiting.sessionId === sessionId) waiting.reject(error);
      }
    },
  };
}
