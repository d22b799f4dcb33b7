import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { kCallContext, kExpectedCodes } from "./call-context.js";

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
export function createLoggingInterceptor(rootLog: Logger): Interceptor {
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
      const transfer = {
        ...(backend ? { backend } : {}),
        ...(attempts ? { attempts: Number(attempts) } : {}),
        ...(bytes > 0 ? { bytes } : {}),
        ...(firstDataMs !== undefined ? { firstAudioMs: firstDataMs } : {}),
      };
      if (err === undefined) {
        log.info({ ...base, code: "ok", ms, ...transfer }, "call");
        return;
      }
      const error = ConnectError.from(err);
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
