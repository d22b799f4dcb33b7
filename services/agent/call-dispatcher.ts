import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createHandlerContext,
  createServiceImplSpec,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { context, type Span, trace } from "@opentelemetry/api";
import {
  type CallRequest,
  CallRequestSchema,
  type CallResponse,
  type WorkOffer,
} from "../../gen/voxgate/v1/agent_pb.js";
import { type ClonePromptSource, kClonePromptSource } from "../engine-host/clone-prompt-source.js";
import { cancelStream } from "../grpc/cancel-stream.js";
import { writeWithBackpressure } from "../grpc/write-with-backpressure.js";
import { extractTraceContext, failSpan, inSpan, SpanKind, tracer } from "../tracing/spans.js";
import { type CallPromptChannel, createCallPromptChannel } from "./call-prompt-channel.js";
import { type ResponseCoalescer, sendCoalesced } from "./coalescing-sender.js";
import type { PromptCache } from "./prompt-cache.js";

/** The agent's end of one call stream. */
export type AgentCallStream = ClientDuplexStream<CallRequest, CallResponse>;

/** Runs tunnelled calls against a service implementation. */
export interface CallDispatcher {
  /**
   * Serves one offered call on `stream` (whose accept was already written): reads the request
   * messages, runs the method, writes responses and a final status, and half-closes. Never throws;
   * failures become the call's status. `signal` cancels the call. `reader` is the stream's
   * reader when one already took the offer off it (a standby stream).
   */
  run(
    offer: WorkOffer,
    stream: AgentCallStream,
    signal: AbortSignal,
    reader?: AsyncIterator<CallResponse>,
  ): Promise<void>;
}

/** Options of {@link createCallDispatcher}. */
export interface CallDispatcherOptions {
  /** On-disk cache of clone prompts; without one, every call fetches its prompt again. */
  promptCache?: PromptCache;
  /**
   * Per method path (`/package.Service/Method`), makes the coalescer of one call: how consecutive
   * responses may be merged while the link is busy (see {@link sendCoalesced}). Methods without
   * one send every response as is.
   */
  coalescers?: Readonly<Record<string, () => ResponseCoalescer<unknown>>>;
  /**
   * Largest clone prompt fetched, in bytes.
   * @default the cache's `maxBytes`, else 2 GiB
   */
  maxPromptBytes?: number;
}

/**
 * Creates a dispatcher for `service` implemented by `impl`: the agent serves the same typed
 * contract a Connect server would, reached through the gateway's call streams instead. Every call
 * gets a {@link kClonePromptSource}: the prompt cache first, else the gateway over that call's
 * stream.
 */
export function createCallDispatcher<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  options: CallDispatcherOptions = {},
): CallDispatcher {
  const { promptCache } = options;
  const maxPromptBytes = options.maxPromptBytes ?? promptCache?.maxBytes ?? 2 * 1024 ** 3;
  const spec = createServiceImplSpec(service, impl);
  const byPath = new Map<string, MethodImplSpec>();
  for (const method of Object.values(spec.methods)) {
    byPath.set(`/${service.typeName}/${method.method.name}`, method);
  }

  return {
    run(offer, stream, signal, reader) {
      // The gateway's routing attempt is the parent: one trace from the caller to the engine.
      const parent = extractTraceContext({
        traceparent: offer.traceparent,
        tracestate: offer.tracestate,
      });
      const span = tracer.startSpan(
        offer.method.replace(/^\//, ""),
        {
          kind: SpanKind.SERVER,
          attributes: { "rpc.system": "voxgate_agent_link", "voxgate.call_id": offer.callId },
        },
        parent,
      );
      if (!span.isRecording()) return runCall(offer, stream, signal, reader, span);
      return context.with(trace.setSpan(parent, span), () =>
        runCall(offer, stream, signal, reader, span).finally(() => span.end()),
      );
    },
  };

  async function runCall(
    offer: WorkOffer,
    stream: AgentCallStream,
    signal: AbortSignal,
    reader: AsyncIterator<CallResponse> | undefined,
    span: Span,
  ): Promise<void> {
    const methodSpec = byPath.get(offer.method);
    const controller = new AbortController();
    // Every wait on the link also ends when the call is cancelled or its stream fails: a write
    // queued on a connection that died may never be acknowledged (Node drops the callbacks of
    // writes pending in a destroyed HTTP/2 stream), and a call stuck there held its engine
    // slot forever (the slot leak).
    const write = (kind: NonNullable<MessageInitShape<typeof CallRequestSchema>["kind"]>) =>
      untilAborted(
        writeWithBackpressure(
          stream,
          create(CallRequestSchema, { kind } as MessageInitShape<typeof CallRequestSchema>),
        ),
        controller.signal,
      );
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const messages = reader ?? (stream as AsyncIterable<CallResponse>)[Symbol.asyncIterator]();
    // The call is over when the gateway has read it to the end and closed it (status), not when
    // our last write is queued: a drain that exited earlier would lose buffered audio.
    const closedByGateway = new Promise<void>((resolve) => {
      stream.once("status", () => resolve());
      stream.once("close", () => resolve());
    });
    let finished = false;
    let handlerContext: ReturnType<typeof createHandlerContext> | undefined;
    const prompts = createCallPromptChannel({
      sendWanted: (digest) => write({ case: "promptWanted", value: { digest } }),
      maxPromptBytes,
    });
    const promptSource: ClonePromptSource = {
      get: (wanted, promptSignal) =>
        inSpan("voxgate.prompt.fetch", { "voxgate.prompt.digest": wanted.digest }, (span) => {
          let fetched = false;
          const load = () => {
            fetched = true;
            return prompts.fetch(wanted, promptSignal);
          };
          return untilAborted(
            promptCache ? promptCache.getOrLoad(wanted.digest, load) : load(),
            promptSignal,
          ).finally(() => span.setAttribute("voxgate.prompt.cache_hit", !fetched));
        }),
    };
    try {
      if (!methodSpec) {
        throw new ConnectError(`method ${offer.method} is not served here`, Code.Unimplemented);
      }
      const { method } = methodSpec;
      const requests = readRequests(method.input, messages, prompts, () => {
        // After the requests, keep reading so a gateway-side cancel aborts the work at once.
        void watchForCancel(messages, prompts, controller, () => finished);
      });
      const timeoutMs = Number(offer.timeoutMs);
      handlerContext = createHandlerContext({
        service,
        method: method as DescMethod,
        protocolName: "voxgate-agent-link",
        requestMethod: "POST",
        url: offer.method,
        requestSignal: controller.signal,
        requestHeader: { "x-request-id": offer.requestId },
        contextValues: createContextValues().set(kClonePromptSource, promptSource),
        ...(timeoutMs > 0 ? { timeoutMs } : {}),
      });
      const respond = (message: unknown) =>
        write({
          case: "response",
          value: toBinary(method.output, create(method.output, message as never)),
        });
      const coalescer = options.coalescers?.[offer.method]?.();
      // With a coalescer, a response counts as sent once it has gone to the HTTP/2 stream, not
      // merely into grpc-js's queue: what the engine makes meanwhile is merged, so a fast engine
      // sends fewer, bigger messages while a slow one still sends each chunk at once.
      const respondFlushed = (message: unknown) =>
        untilAborted(
          writeFlushed(stream, {
            case: "response",
            value: toBinary(method.output, create(method.output, message as never)),
          }),
          controller.signal,
        );
      const send = coalescer ? respondFlushed : respond;
      switch (methodSpec.kind) {
        case "unary":
          await respond(await methodSpec.impl(await only(requests), handlerContext));
          break;
        case "server_streaming":
          await sendCoalesced(
            methodSpec.impl(await only(requests), handlerContext),
            send,
            coalescer,
          );
          break;
        case "client_streaming":
          await respond(await methodSpec.impl(requests, handlerContext));
          break;
        case "bidi_streaming":
          await sendCoalesced(methodSpec.impl(requests, handlerContext), send, coalescer);
          break;
      }
      finished = true;
      await write({ case: "status", value: { code: 0, message: "" } });
    } catch (err) {
      finished = true;
      const error = controller.signal.aborted
        ? ConnectError.from(controller.signal.reason, Code.Canceled)
        : ConnectError.from(err);
      failSpan(span, error);
      // Queued without waiting for the link: a status is small, and a call that failed because
      // its link is stuck must not wait on that link again.
      if (!stream.destroyed && !stream.writableEnded) {
        stream.write(
          create(CallRequestSchema, {
            kind: { case: "status", value: { code: error.code, message: error.rawMessage } },
          }),
        );
      }
    } finally {
      if (!stream.writableEnded) stream.end();
      await Promise.race([closedByGateway, aborted(controller.signal)]);
      if (controller.signal.aborted) cancelStream(stream);
      signal.removeEventListener("abort", onAbort);
      // Clears the context's deadline timer; without this every call kept the process alive
      // until its deadline (a drained agent could not exit).
      handlerContext?.abort();
    }
  }
}

async function* readRequests<I extends DescMessage>(
  schema: I,
  messages: AsyncIterator<CallResponse>,
  prompts: CallPromptChannel,
  onDone: () => void,
): AsyncGenerator<MessageShape<I>> {
  while (true) {
    let next: IteratorResult<CallResponse>;
    try {
      next = await messages.next();
    } catch (err) {
      prompts.close(err);
      throw err;
    }
    if (next.done) {
      const error = new ConnectError(
        "gateway closed the call before sending requests_done",
        Code.Canceled,
      );
      prompts.close(error);
      throw error;
    }
    const { kind } = next.value;
    if (kind.case === "request") {
      yield fromBinary(schema, kind.value);
    } else if (kind.case === "requestsDone") {
      onDone();
      return;
    } else if (kind.case === "promptChunk") {
      prompts.receive(kind.value);
    }
  }
}

/**
 * Reads the call stream after the requests: prompt chunks go to their fetch, and a stream that
 * fails (the gateway cancelled) aborts the work at once.
 */
async function watchForCancel(
  messages: AsyncIterator<CallResponse>,
  prompts: CallPromptChannel,
  controller: AbortController,
  isFinished: () => boolean,
): Promise<void> {
  try {
    for (let next = await messages.next(); !next.done; next = await messages.next()) {
      if (next.value.kind.case === "promptChunk") prompts.receive(next.value.kind.value);
    }
    prompts.close(undefined);
  } catch (err) {
    const error = new ConnectError(`gateway cancelled the call: ${errorText(err)}`, Code.Canceled);
    prompts.close(gatewayStatus(err) ?? error);
    if (!isFinished()) controller.abort(gatewayStatus(err) ?? error);
  }
}

/**
 * The status the gateway ended the stream with, when it refused something (a prompt it will not
 * send, one its store cannot read) rather than cancelling: the call then fails with that code.
 */
function gatewayStatus(err: unknown): ConnectError | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  const code = Number(err.code);
  if (code === Code.Canceled || !Number.isInteger(code) || code <= 0 || code > 16) return undefined;
  const details = "details" in err ? String(err.details) : "";
  return new ConnectError(`gateway ended the call: ${details}`, code as Code);
}

/** Settles like `promise`, or rejects with the abort reason as soon as `signal` fires. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
}

async function only<T>(requests: AsyncIterable<T>): Promise<T> {
  let first: T | undefined;
  let count = 0;
  for await (const request of requests) {
    if (count++ === 0) first = request;
  }
  if (count !== 1 || first === undefined) {
    throw new ConnectError(
      `expected exactly one request message, got ${count}`,
      Code.InvalidArgument,
    );
  }
  return first;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Writes one message and resolves once the stream has passed it on (its write callback). */
function writeFlushed(
  stream: AgentCallStream,
  kind: NonNullable<MessageInitShape<typeof CallRequestSchema>["kind"]>,
): Promise<void> {
  if (stream.destroyed || stream.writableEnded)
    return Promise.reject(new Error("stream is closed"));
  return new Promise((resolve, reject) => {
    stream.write(
      create(CallRequestSchema, { kind } as MessageInitShape<typeof CallRequestSchema>),
      (err: Error | null | undefined) => (err ? reject(err) : resolve()),
    );
  });
}
