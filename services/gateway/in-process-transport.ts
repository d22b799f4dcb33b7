import {
  create,
  type DescMessage,
  type DescMethodStreaming,
  type DescMethodUnary,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createHandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImplSpec,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  invokeUnaryImplementation,
  transformInvokeImplementation,
} from "@connectrpc/connect/protocol";

type HeadersInput = ConstructorParameters<typeof Headers>[0];

/** Options of {@link createInProcessTransport}. */
export interface InProcessTransportOptions {
  /** The service implementations, as registered on the Connect router. */
  services: readonly ServiceImplSpec[];
  /** The interceptors the router runs (logging, …), so in-process calls are treated alike. */
  interceptors: readonly Interceptor[];
}

/**
 * A Connect `Transport` that calls the gateway's own service implementations in process: no
 * serialization, no socket, yet the same interceptors, deadlines and context values (caller,
 * request id) as a call that came over the wire. The REST transcoder and the OpenAI-compatible
 * API call services through it, so there is one implementation of each RPC.
 */
export function createInProcessTransport(options: InProcessTransportOptions): Transport {
  const interceptors = [...options.interceptors];
  const methods = new Map<string, MethodImplSpec>();
  for (const service of options.services) {
    for (const spec of Object.values(service.methods)) {
      methods.set(`/${service.service.typeName}/${spec.method.name}`, spec);
    }
  }
  const lookup = (method: DescMethodUnary | DescMethodStreaming): MethodImplSpec => {
    const spec = methods.get(`/${method.parent.typeName}/${method.name}`);
    if (!spec) {
      throw new ConnectError(
        `${method.parent.typeName}/${method.name} is not served here`,
        Code.Unimplemented,
      );
    }
    return spec;
  };
  const contextFor = (
    spec: MethodImplSpec,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInput | undefined,
    contextValues: ContextValues | undefined,
  ) =>
    createHandlerContext({
      service: spec.method.parent,
      method: spec.method,
      protocolName: "in-process",
      requestMethod: "POST",
      url: `/${spec.method.parent.typeName}/${spec.method.name}`,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(signal ? { requestSignal: signal } : {}),
      ...(header ? { requestHeader: header } : {}),
      ...(contextValues ? { contextValues } : {}),
    });

  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInput | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const spec = lookup(method) as MethodImplSpec<I, O> & { kind: "unary" };
      const context = contextFor(spec, signal, timeoutMs, header, contextValues);
      try {
        const message = await invokeUnaryImplementation(
          spec,
          context,
          create(method.input, input),
          interceptors,
        );
        return {
          stream: false,
          service: method.parent,
          method,
          header: context.responseHeader,
          trailer: context.responseTrailer,
          message,
        };
      } finally {
        // Clears the context's deadline timer.
        context.abort();
      }
    },
    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInput | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      const spec = lookup(method) as MethodImplSpec<I, O>;
      const context = contextFor(spec, signal, timeoutMs, header, contextValues);
      const requests = (async function* () {
        for await (const message of input) yield create(method.input, message);
      })();
      const responses = transformInvokeImplementation(spec, context, interceptors)(requests);
      return {
        stream: true,
        service: method.parent,
        method,
        header: context.responseHeader,
        trailer: context.responseTrailer,
        message: (async function* () {
          try {
            yield* responses;
          } finally {
            context.abort();
          }
        })(),
      };
    },
  };
}
