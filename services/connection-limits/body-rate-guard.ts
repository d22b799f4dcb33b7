import type { EventEmitter } from "node:events";
import * as http2 from "node:http2";
import type { Logger } from "pino";
import type { NodeRequest } from "../auth/rpc-error-response.js";

/** The least rate request bodies must arrive at. */
export interface BodyRateGuardOptions {
  /** Least bytes per second a request body must arrive at, on average over each window. @default 1024 */
  minBytesPerSecond: number;
  /** Window the rate is measured over, in ms (the headers timeout). @default 10_000 */
  windowMs: number;
  /** Logger: the refusal is a cut connection, so it is logged. */
  log: Logger;
}

/**
 * Makes request bodies arrive at a least rate, by listening to `server`'s `request` event (an
 * HTTP/1.1 or HTTP/2 server, cleartext or TLS): while a request's body is incomplete (also after
 * a refusal was answered, while the rest of the body is read and dropped), each window must bring
 * `minBytesPerSecond × windowMs` bytes over its connection, or the request is cut (HTTP/1.1: the connection; HTTP/2: the stream) and the cut
 * logged naming the setting. A body dribbled at 1 B/s no longer holds a connection and a handler
 * for minutes. Windows in which the server itself is slow (the body waits, unread, in the
 * request's buffer) do not count.
 */
export function attachBodyRateGuard(server: EventEmitter, options: BodyRateGuardOptions): void {
  const log = options.log.child({ component: "body-rate-guard" });
  const minBytesPerWindow = (options.minBytesPerSecond * options.windowMs) / 1000;
  server.on("request", (req: NodeRequest) => {
    const bytesRead = () =>
      "stream" in req ? (req.stream.session?.socket?.bytesRead ?? 0) : req.socket.bytesRead;
    let mark = bytesRead();
    const judge = () => {
      if (req.complete || req.destroyed) {
        clearInterval(check);
        return;
      }
      const now = bytesRead();
      const arrived = now - mark;
      mark = now;
      if (req.readableLength > 0 || arrived >= minBytesPerWindow) return;
      clearInterval(check);
      log.warn(
        {
          peer: req.socket?.remoteAddress,
          path: (req.url ?? "").split("?")[0],
          bytes: arrived,
          windowMs: options.windowMs,
          reason: `request body slower than ${options.minBytesPerSecond} B/s (min body rate: VOXGATE_MIN_BODY_BYTES_PER_SECOND)`,
        },
        "slow request body cut",
      );
      if ("stream" in req) req.stream.close(http2.constants.NGHTTP2_CANCEL);
      else req.socket.destroy();
    };
    // Timers run before pending reads: after a busy stretch the body may have come but wait
    // unread. Judge once those reads ran.
    const check = setInterval(() => setImmediate(judge), options.windowMs);
    check.unref();
    // Not the answer's end: a refused request's body is still read (and dropped) after it.
    req.once("close", () => clearInterval(check));
  });
}
