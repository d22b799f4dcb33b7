import type * as http2 from "node:http2";
import type { Logger } from "pino";

/** Timeouts of HTTP/2 sessions. */
export interface H2SessionGuardOptions {
  /**
   * Time a new session has to open its first stream (preface, SETTINGS and a complete HEADERS
   * frame), in ms; the same time the HTTP/1.1 side gives request headers (setting
   * headersTimeoutMs, or agentFirstStreamTimeoutMs on the agent port).
   */
  firstStreamTimeoutMs: number;
  /**
   * Time a session may stay without an open stream before it is closed, in ms (setting
   * idleTimeoutMs, or agentIdleTimeoutMs).
   */
  idleTimeoutMs: number;
  /** Logger. */
  log: Logger;
  /**
   * Names of the two settings, for the log line (each port has its own).
   * @default the public port's `VOXGATE_HEADERS_TIMEOUT_MS` / `VOXGATE_IDLE_TIMEOUT_MS`
   */
  settingNames?: { firstStreamTimeoutMs: string; idleTimeoutMs: string } | undefined;
}

/** Time a session told to go away (GOAWAY) has before it is cut, in ms. */
const GOAWAY_GRACE_MS = 1000;

/**
 * Closes HTTP/2 sessions that hold a connection without using it, by listening to `server`'s
 * `session` event: one that sends only the connection preface (or never finishes SETTINGS or a
 * HEADERS frame) is closed when `firstStreamTimeoutMs` passes without a stream, and one left
 * without an open stream for `idleTimeoutMs` gets GOAWAY (clients reconnect when they need to).
 * Works on cleartext and TLS HTTP/2 servers alike.
 */
export function attachH2SessionGuard(
  server: http2.Http2Server | http2.Http2SecureServer,
  options: H2SessionGuardOptions,
): void {
  const log = options.log.child({ component: "h2-session-guard" });
  const names = options.settingNames ?? {
    firstStreamTimeoutMs: "VOXGATE_HEADERS_TIMEOUT_MS",
    idleTimeoutMs: "VOXGATE_IDLE_TIMEOUT_MS",
  };
  server.on("session", (session: http2.ServerHttp2Session) => {
    let open = 0;
    let everOpened = false;
    let timer: NodeJS.Timeout | undefined;
    const closeSession = (reason: string) => {
      if (session.destroyed) return;
      log.info({ peer: session.socket?.remoteAddress, reason }, "HTTP/2 session closed");
      if (!everOpened) {
        // Nothing to finish: a session that never sent a stream is cut at once.
        session.destroy();
        return;
      }
      session.close();
      setTimeout(() => session.destroy(), GOAWAY_GRACE_MS).unref();
    };
    const arm = (ms: number, reason: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        // Timers run before pending reads: after a busy stretch (a flood) the streams this
        // session sent may still wait unread. Decide once those reads ran.
        setImmediate(() => {
          if (open === 0) closeSession(reason);
        });
      }, ms);
      timer.unref();
    };
    arm(
      options.firstStreamTimeoutMs,
      `no stream within ${options.firstStreamTimeoutMs} ms (headers timeout: ${names.firstStreamTimeoutMs})`,
    );
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      everOpened = true;
      open++;
      clearTimeout(timer);
      stream.once("close", () => {
        open--;
        if (open === 0 && !session.destroyed) {
          arm(
            options.idleTimeoutMs,
            `idle for ${options.idleTimeoutMs} ms (idle timeout: ${names.idleTimeoutMs})`,
          );
        }
      });
    });
    session.once("close", () => clearTimeout(timer));
  });
}
