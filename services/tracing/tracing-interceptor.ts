import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { context, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { iterateInSpan, tracer } from "./spans.js";

/**
 * Puts every public RPC (over the wire or in process, from the REST, OpenAI, relay or StoryForge
 * frontends) in a span named `<service>/<method>`, a child of the request's HTTP span, with the
 * outcome code. A streamed response's span lasts until its last message was read.
 */
export function createTracingInterceptor(): Interceptor {
  return (next) => async (req) => {
    const parent = context.active();
    const span = tracer.startSpan(
      `${req.service.typeName}/${req.method.name}`,
      // The request's HTTP span is the SERVER span; in-process calls have only this one.
      { kind: SpanKind.INTERNAL },
      parent,
    );
    if (!span.isRecording()) return next(req);
    span.setAttributes({
      "rpc.system": "connect_rpc",
      "rpc.service": req.service.typeName,
      "rpc.method": req.method.name,
    });
    const active = trace.setSpan(parent, span);
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await context.with(active, () => next(req));
    } catch (err) {
      end(span, err);
      throw err;
    }
    if (!res.stream) {
      end(span, undefined);
      return res;
    }
    const messages = res.message;
    let failure: unknown;
    return {
      ...res,
      message: iterateInSpan(
        span,
        parent,
        () =>
          (async function* () {
            try {
              yield* messages;
            } catch (err) {
              failure = err;
              throw err;
            }
          })(),
        () => setCode(span, failure),
      ),
    };
  };
}

function setCode(span: Span, err: unknown): void {
  if (err === undefined) {
    span.setAttribute("rpc.connect_rpc.error_code", "ok");
    return;
  }
  const error = ConnectError.from(err);
  span.setAttribute("rpc.connect_rpc.error_code", Code[error.code]);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.rawMessage });
}

function end(span: Span, err: unknown): void {
  setCode(span, err);
  span.end();
}
