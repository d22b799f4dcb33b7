import { createHash, type Hash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { PromptChunk } from "../../gen/voxgate/v1/agent_pb.js";
import type { ClonePromptWanted } from "../engine-host/clone-prompt-source.js";

/** Options of {@link createCallPromptChannel}. */
export interface CallPromptChannelOptions {
  /** Sends `prompt_wanted{digest}` on the call's stream. */
  sendWanted(digest: string): Promise<void>;
  /**
   * Largest prompt accepted, in bytes (the cache size, `VOXGATE_AGENT_PROMPT_CACHE_BYTES`);
   * larger ones get RESOURCE_EXHAUSTED so the gateway tries an agent that can hold them.
   */
  maxPromptBytes: number;
}

/**
 * Fetches clone prompts over one call's stream: asks the gateway with `prompt_wanted`, takes the
 * `prompt_chunk`s the call's reader hands to {@link receive}, and checks size and sha256 before
 * handing the bytes out. Each digest is fetched at most once per call (the gateway allows no more).
 */
export interface CallPromptChannel {
  /**
   * Resolves with the prompt's verified bytes. Rejects with DATA_LOSS when the gateway's bytes do
   * not match the size or digest, and with the abort reason when `signal` fires.
   */
  fetch(wanted: ClonePromptWanted, signal: AbortSignal): Promise<Uint8Array>;
  /** Takes one chunk read from the call stream; chunks for no pending fetch are dropped. */
  receive(chunk: PromptChunk): void;
  /** Fails pending fetches: the call stream ended or failed. */
  close(reason: unknown): void;
}

interface Receiver {
  wanted: ClonePromptWanted;
  buffer: Buffer;
  received: number;
  hash: Hash;
  resolve(bytes: Uint8Array): void;
  reject(error: unknown): void;
}

/** Creates the prompt channel of one call. */
export function createCallPromptChannel(options: CallPromptChannelOptions): CallPromptChannel {
  const receivers = new Map<string, Receiver>();
  const fetches = new Map<string, Promise<Uint8Array>>();
  let closedBy: unknown;

  const settle = (digest: string) => receivers.delete(digest);

  const start = (wanted: ClonePromptWanted): Promise<Uint8Array> => {
    if (closedBy !== undefined) return Promise.reject(closedBy);
    if (wanted.sizeBytes > options.maxPromptBytes) {
      return Promise.reject(
        new ConnectError(
          `clone prompt ${wanted.digest} is ${wanted.sizeBytes} bytes; this agent holds at most ` +
            `${options.maxPromptBytes} (VOXGATE_AGENT_PROMPT_CACHE_BYTES)`,
          Code.ResourceExhausted,
        ),
      );
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      receivers.set(wanted.digest, {
        wanted,
        // The size comes from the gateway's own store record; one allocation, no re-copying.
        buffer: Buffer.allocUnsafe(wanted.sizeBytes),
        received: 0,
        hash: createHash("sha256"),
        resolve,
        reject,
      });
      options.sendWanted(wanted.digest).catch((err: unknown) => {
        settle(wanted.digest);
        reject(
          new ConnectError(
            `could not ask the gateway for clone prompt ${wanted.digest}`,
            Code.Unavailable,
            undefined,
            undefined,
            err,
          ),
        );
      });
    });
  };

  const dataLoss = (receiver: Receiver, why: string) => {
    settle(receiver.wanted.digest);
    receiver.reject(
      new ConnectError(
        `clone prompt ${receiver.wanted.digest} from the gateway ${why}`,
        Code.DataLoss,
      ),
    );
  };

  return {
    fetch(wanted, signal) {
      let fetch = fetches.get(wanted.digest);
      if (!fetch) {
        fetch = start(wanted);
        fetches.set(wanted.digest, fetch);
      }
      if (signal.aborted) return Promise.reject(signal.reason);
      return new Promise<Uint8Array>((resolve, reject) => {
        const onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        (fetch as Promise<Uint8Array>).then(
          (bytes) => {
            signal.removeEventListener("abort", onAbort);
            resolve(bytes);
          },
          (err: unknown) => {
            signal.removeEventListener("abort", onAbort);
            reject(err);
          },
        );
      });
    },
    receive(chunk) {
      const receiver = receivers.get(chunk.digest);
      if (!receiver) return;
      const { wanted } = receiver;
      if (receiver.received + chunk.data.byteLength > wanted.sizeBytes) {
        return dataLoss(receiver, `is longer than its declared ${wanted.sizeBytes} bytes`);
      }
      receiver.buffer.set(chunk.data, receiver.received);
      receiver.received += chunk.data.byteLength;
      receiver.hash.update(chunk.data);
      if (!chunk.last) return;
      if (receiver.received !== wanted.sizeBytes) {
        return dataLoss(
          receiver,
          `ended after ${receiver.received} of its declared ${wanted.sizeBytes} bytes`,
        );
      }
      const actual = receiver.hash.digest("hex");
      if (actual !== wanted.digest) {
        return dataLoss(receiver, `does not match its digest (the bytes hash to ${actual})`);
      }
      settle(wanted.digest);
      receiver.resolve(receiver.buffer);
    },
    close(reason) {
      closedBy ??=
        reason instanceof ConnectError
          ? reason
          : new ConnectError("the call ended before the clone prompt arrived", Code.Unavailable);
      for (const receiver of [...receivers.values()]) {
        settle(receiver.wanted.digest);
        receiver.reject(closedBy);
      }
    },
  };
}
