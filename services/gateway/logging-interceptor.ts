import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { kCallContext, kExpectedCodes } from "./call-context.js";

/**
 * Logs one line per public call when it ends: method, outcome code, duration, request id and
 * caller. Streams are logged when their last message has gone out (or they fail).
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
    };
    const done = (err?: unknown) => {
      const ms = Math.round(performance.now() - started);
      if (err === undefined) {
        log.info({ ...base, code: "ok", ms }, "call");
        return;
      }
      const error = ConnectError.from(err);
      const fields = { ...base, code: Code[error.code], ms, reason: error.rawMessage };
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
    if (!res.stream) {
      done();
      return res;
    }
    return {
      ...res,
      message: (async function* () {
        try {
          yield* res.message;
          done();
        } catch (err) {
          done(err);
          throw err;
        }
      })(),
    };
  };
}
