import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { GatewayMetrics } from "../metrics/gateway-metrics.js";
import { kQueueWaitHeader } from "../tts/tts-handler.js";
import { kCallContext, kExpectedCodes } from "./call-context.js";

/** The wire protocol of a call, from its content type; frontends' in-process calls have none. */
function protocolOf(contentType: string | null): string {
  if (!contentType) return "in-process";
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/** Bytes of audio (or other `google.api.HttpBody` data) in one response message. */
function dataBytes(message: unknown): number {
  const data = (message as { data?: unknown } | undefined)?.data;
  return data instanceof Uint8Array ? data.byteLength : 0;
}

/**
 * Logs one access line per public call when it ends: method, outcome code, duration, request
 * id, caller and client address, and for calls that moved audio the backend that served it, the
 * backends tried, the bytes sent and when the first of them left. Streams are logged when their
 * last message has gone out (or they fail).
 */
export function createLoggingInterceptor(
  rootLog: Logger,
  metrics?: Pick<GatewayMetrics, "observeCall">,
): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const context = req.contextValues.get(kCallContext);
    // The root logger with the request id as a field: same line as the call's child logger would
    // write, without building a child per call.
    const log = rootLog;
    const base = {
      requestId: context?.requestId,
      method: `${req.service.typeName}/${req.method.name}`,
      caller: context?.principal?.name,
      ...(context?.clientAddress ? { client: context.clientAddress } : {}),
    };
    let bytes = 0;
    let firstDataMs: number | undefined;
    const count = (message: unknown) => {
      const size = dataBytes(message);
      if (size > 0 && firstDataMs === undefined) {
        firstDataMs = Math.round(performance.now() - started);
      }
      bytes += size;
    };
    let header: Headers | undefined;
    const done = (err?: unknown) => {
      const ms = Math.round(performance.now() - started);
      const backend = header?.get("x-voxgate-backend");
      const attempts = header?.get("x-voxgate-attempts");
      const queueMs = header?.get(kQueueWaitHeader);
      const transfer = {
        ...(backend ? { backend } : {}),
        ...(attempts ? { attempts: Number(attempts) } : {}),
        ...(bytes > 0 ? { bytes } : {}),
        ...(firstDataMs !== undefined ? { firstAudioMs: firstDataMs } : {}),
      };
      const error = err === undefined ? undefined : ConnectError.from(err);
      metrics?.observeCall({
        service: req.service.typeName,
        method: req.method.name,
        protocol: protocolOf(req.header.get("content-type")),
        code: error ? Code[error.code] : "ok",
        seconds: (performance.now() - started) / 1000,
        backend: backend ?? undefined,
        bytes,
        firstAudioSeconds: firstDataMs === undefined ? undefined : firstDataMs / 1000,
        queueWaitSeconds: queueMs ? Number(queueMs) / 1000 : undefined,
      });
      if (error === undefined) {
        log.info({ ...base, code: "ok", ms, ...transfer }, "call");
        return;
      }
      const fields = { ...base, code: Code[error.code], ms, ...transfer, reason: error.rawMessage };
      if (error.code === Code.Internal || error.code === Code.Unknown) {
        log.error({ ...fields, err: error.cause ?? error }, "call failed");
      } else if (req.contextValues.get(kExpectedCodes).includes(error.code)) {
        log.debug(fields, "call");
      } else {
        log.info(fields, "call");
      }
    };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      done(err);
      throw err;
    }
    header = res.header;
    if (!res.stream) {
      count(res.message);
      done();
      return res;
    }
    return {
      ...res,
      message: (async function* () {
        try {
          for await (const message of res.message) {
            count(message);
            yield message;
          }
          done();
        } catch (err) {
          done(err);
          throw err;
        }
      })(),
    };
  };
}
