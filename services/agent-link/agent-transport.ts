import {
  type DescMessage,
  type DescMethod,
  type DescMethodStreaming,
  type DescMethodUnary,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { status as grpcStatus } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { CallRequest } from "../../gen/voxgate/v1/agent_pb.js";
import { writeWithBackpressure } from "../grpc/write-with-backpressure.js";
import { failSpan, tracer } from "../tracing/spans.js";
import { prepareAgentRequest } from "./agent-request-guard.js";
import { agentStatusError, sanitizeAgentMessage } from "./agent-status.js";
import type { AcceptedCall } from "./agent-streams.js";
import { createPromptGrant, deliverPrompt } from "./prompt-delivery.js";
import type { PromptSource } from "./prompt-source.js";

/** What the transport needs from an agent session. */
export interface AgentCallOpener {
  /** Agent id, for error messages. */
  readonly agentId: string;
  /** Offers a call to the agent and resolves with the stream it opens for it. */
  open(
    method: DescMethod,
    timeoutMs: number | undefined,
    requestId: string,
    signal: AbortSignal,
  ): Promise<AcceptedCall & { callId: string }>;
  /** Tells the agent to stop a call. */
  cancel(callId: string, reason: string): void;
  /**
   * Time the link itself costs a call, in ms (twice its round trip: the offer or request going
   * down, the answer coming back), added to the gateway's deadline of the call, so a health probe
   * with a 1 s deadline does not fail an agent 1.4 s away. Absent: 0.
   */
  linkDelayMs?(): number;
}

/** Header carrying the client's request id down to the agent. */
export const kRequestIdHeader = "x-request-id";

/** Options of {@link createAgentTransport}. */
export interface AgentTransportOptions {
  /** Where clone prompts agents ask for are read; without it such asks fail FAILED_PRECONDITION. */
  promptSource?: PromptSource;
  /**
   * Largest `data` of one prompt_chunk, in bytes; keep it below the link's message limit.
   * @default 262_144 (256 KiB)
   */
  promptChunkBytes?: number;
  /** Logger for refused prompt fetches. */
  log?: Logger;
  /** Called after a prompt was sent whole to the agent (which now caches it). */
  onPromptDelivered?(digest: string): void;
  /**
   * Observes the clone prompts of each call to the agent: `hit` when a prompt the call referred
   * to was never asked for (the agent had it), `miss` with the bytes sent when it was.
   */
  onPromptDelivery?(delivery: PromptDelivery): void;
}

/** One clone prompt a call to an agent referred to: sent (`bytes`) or found in its cache (hit). */
export interface PromptDelivery {
  /** Prompt digest. */
  digest: string;
  /** Bytes sent; undefined: the agent had the prompt (a cache hit). */
  bytes?: number;
}

/**
 * Creates a Connect `Transport` that runs GPUBackendService calls on an agent: each call is one
 * work offer plus one call stream opened by the agent, carrying serialized request and response
 * messages. With it the registry holds an ordinary typed client per agent.
 *
 * Deadlines: `timeoutMs` is enforced here and sent to the agent; on expiry the call ends with
 * DEADLINE_EXCEEDED and the agent is told to cancel. Caller aborts cancel the agent's work too.
 */
export function createAgentTransport(
  agent: AgentCallOpener,
  options: AgentTransportOptions = {},
): Transport {
  const promptChunkBytes = options.promptChunkBytes ?? 256 * 1024;
  async function stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O> | DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0] | undefined,
    input: AsyncIterable<MessageInitShape<I>>,
  ): Promise<StreamResponse<I, O>> {
    const requestId = requestIdOf(header);
    const deadlineMs = timeoutMs ? timeoutMs + Math.max(0, agent.linkDelayMs?.() ?? 0) : undefined;
    // One controller, one timer and one listener per call: AbortSignal.any/timeout cost several
    // times more, and this runs for every call through an agent.
    const controller = new AbortController();
    const callSignal = controller.signal;
    const onCallerAbort = () => controller.abort(signal?.reason);
    const timer = deadlineMs
      ? setTimeout(
          () =>
            controller.abort(
              new ConnectError(`deadline of ${timeoutMs} ms exceeded`, Code.DeadlineExceeded),
            ),
          deadlineMs,
        )
      : undefined;
    if (signal?.aborted) onCallerAbort();
    else signal?.addEventListener("abort", onCallerAbort, { once: true });
    const release = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onCallerAbort);
    };
    let call: Awaited<ReturnType<AgentCallOpener["open"]>>;
    try {
      call = await agent.open(method, timeoutMs, requestId, callSignal);
    } catch (err) {
      release();
      throw err;
    }
    const { callId, stream: callStream, messages } = call;

    let finished = false;
    // Set when the gateway ends the call itself (a refused or failed prompt fetch): the reader
    // then throws this instead of "lost the call".
    let failure: ConnectError | undefined;
    const fail = (forCaller: ConnectError, agentCode: grpcStatus, agentDetails: string) => {
      if (finished || failure) return;
      failure = forCaller;
      agent.cancel(callId, agentDetails);
      callStream.emit("error", { code: agentCode, details: agentDetails });
    };
    const grant = createPromptGrant();
    const deliveries = new AbortController();
    const onAbort = () => {
      // The deadline timer has done its work (or is moot): a caller that abandons the response
      // iterator without returning it must not leave the timer holding the process for its
      // whole deadline.
      release();
      if (finished) return;
      const reason = abortReason(callSignal, timeoutMs);
      agent.cancel(callId, reason.message);
      // Ending the stream with a status wakes the reader below and tells the agent at once.
      callStream.emit("error", { code: grpcStatus.CANCELLED, details: reason.message });
    };
    callSignal.addEventListener("abort", onAbort, { once: true });
    // The agent's connection went away under this call (RST, a dropped link): grpc-js marks the
    // stream cancelled, but its reader below may never wake. End it with a status.
    callStream.once("close", release);
    callStream.once("cancelled", () => {
      if (finished) return;
      callStream.emit("error", {
        code: grpcStatus.UNAVAILABLE,
        details: `agent ${agent.agentId} connection lost during the call`,
      });
    });

    // Requests flow while responses are read, as on any bidi stream.
    const pump = (async () => {
      for await (const message of input) {
        // Every request to an agent goes through the guard: no URL, no unknown fields.
        const { bytes, promptDigests } = prepareAgentRequest(method.input, message);
        grant.allow(promptDigests);
        await writeWithBackpressure(callStream, { kind: { case: "request", value: bytes } });
      }
      await writeWithBackpressure(callStream, { kind: { case: "requestsDone", value: true } });
    })();
    pump.catch(() => {
      // A failed pump surfaces through the reader (the stream ends); nothing else to do here.
    });

    /** Answers an agent's ask for prompt bytes: only digests this call's requests refer to. */
    function onPromptWanted(digest: string): void {
      const refusal = grant.take(digest);
      if (refusal) {
        const why = `clone prompt ${digest.slice(0, 80)} ${refusal}`;
        options.log?.warn(
          { agent: agent.agentId, callId, digest: digest.slice(0, 80), reason: refusal },
          "agent asked for a clone prompt it may not fetch; refused",
        );
        // The agent misbehaved, not the caller: UNAVAILABLE lets the call move to another backend.
        fail(
          new ConnectError(`agent ${agent.agentId} asked for ${why}; refused`, Code.Unavailable),
          grpcStatus.PERMISSION_DENIED,
          `permission denied: ${why}`,
        );
        return;
      }
      const source = options.promptSource;
      if (!source) {
        const why = `this gateway has no prompt store to send clone prompt ${digest} from`;
        fail(new ConnectError(why, Code.FailedPrecondition), grpcStatus.FAILED_PRECONDITION, why);
        return;
      }
      const deliveryStarted = performance.now();
      const span = tracer.startSpan("voxgate.prompt.deliver", {
        attributes: { "voxgate.backend": agent.agentId, "voxgate.prompt.digest": digest },
      });
      deliverPrompt({
        stream: callStream,
        source,
        digest,
        chunkBytes: promptChunkBytes,
        signal: AbortSignal.any([deliveries.signal, callSignal]),
      }).then(
        (bytes) => {
          span.setAttribute("voxgate.prompt.bytes", bytes);
          span.end();
          options.onPromptDelivery?.({ digest, bytes });
          options.log?.info(
            {
              agent: agent.agentId,
              callId,
              digest,
              bytes,
              ms: Math.round(performance.now() - deliveryStarted),
            },
            "clone prompt delivered to agent",
          );
          options.onPromptDelivered?.(digest);
        },
        (err: unknown) => {
          failSpan(span, err);
          span.end();
          if (finished || deliveries.signal.aborted || callSignal.aborted) return;
          const error = ConnectError.from(err);
          fail(
            new ConnectError(
              `could not send clone prompt ${digest} to agent ${agent.agentId}: ${error.rawMessage}`,
              error.code,
              undefined,
              undefined,
              err,
            ),
            error.code as number,
            `could not send clone prompt ${digest}: ${error.rawMessage}`,
          );
        },
      );
    }

    let succeeded = false;
    async function* responses(): AsyncGenerator<MessageShape<O>> {
      try {
        while (true) {
          let next: IteratorResult<CallRequest>;
          try {
            next = await messages.next();
          } catch (err) {
            if (failure) throw failure;
            if (callSignal.aborted) throw abortReason(callSignal, timeoutMs);
            throw new ConnectError(
              `agent ${agent.agentId} lost the call: ${sanitizeAgentMessage(errorText(err))}`,
              Code.Unavailable,
              undefined,
              undefined,
              err,
            );
          }
          if (next.done) {
            if (failure) throw failure;
            if (callSignal.aborted) throw abortReason(callSignal, timeoutMs);
            throw new ConnectError(
              `agent ${agent.agentId} ended the call without a status`,
              Code.Unavailable,
            );
          }
          const { kind } = next.value;
          switch (kind.case) {
            case "response":
              yield fromBinary(method.output, kind.value);
              break;
            case "status":
              if (kind.value.code !== 0) {
                throw agentStatusError(agent.agentId, kind.value.code, kind.value.message);
              }
              succeeded = true;
              return;
            case "promptWanted":
              onPromptWanted(kind.value.digest);
              break;
            default:
              throw new ConnectError(
                `agent ${agent.agentId} sent an unexpected ${kind.case ?? "empty"} message`,
                Code.Internal,
              );
          }
        }
      } finally {
        finished = true;
        release();
        // A call that failed may have failed before its agent looked for the prompt.
        if (succeeded && options.onPromptDelivery) {
          for (const digest of grant.untaken()) options.onPromptDelivery({ digest });
        }
        deliveries.abort(new Error("call ended"));
        callSignal.removeEventListener("abort", onAbort);
        if (!callStream.writableEnded && !callStream.destroyed) callStream.end();
      }
    }

    return {
      stream: true,
      service: method.parent,
      method: method as DescMethodStreaming<I, O>,
      header: new Headers(),
      trailer: new Headers(),
      message: responses(),
    };
  }

  return {
    stream,
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0] | undefined,
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      const response = await stream(method, signal, timeoutMs, header, single(input));
      let message: MessageShape<O> | undefined;
      for await (const m of response.message) {
        if (message) throw new ConnectError("agent sent two unary responses", Code.Internal);
        message = m;
      }
      if (!message) throw new ConnectError("agent sent no unary response", Code.Internal);
      return { ...response, stream: false, method, message };
    },
  };
}

/** The request id among the call's headers, in whichever form the client passed them. */
function requestIdOf(header: ConstructorParameters<typeof Headers>[0] | undefined): string {
  if (!header) return "";
  if (header instanceof Headers) return header.get(kRequestIdHeader) ?? "";
  if (Array.isArray(header)) {
    return header.find(([name]) => name?.toLowerCase() === kRequestIdHeader)?.[1] ?? "";
  }
  return (header as Record<string, string>)[kRequestIdHeader] ?? "";
}

async function* single<T>(value: T): AsyncIterable<T> {
  yield value;
}

function abortReason(signal: AbortSignal, timeoutMs: number | undefined): ConnectError {
  const reason: unknown = signal.reason;
  if (reason instanceof DOMException && reason.name === "TimeoutError") {
    return new ConnectError(`deadline of ${timeoutMs} ms exceeded`, Code.DeadlineExceeded);
  }
  return ConnectError.from(reason, Code.Canceled);
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  // grpc-js reports statuses as plain objects with `details`.
  if (typeof err === "object" && err !== null && "details" in err) return String(err.details);
  return String(err);
}
