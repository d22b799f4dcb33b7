import type * as http2 from "node:http2";
import type { Logger } from "pino";

/** Options of {@link createConnectionLiveness}. */
export interface ConnectionLivenessOptions {
  /** Interval of HTTP/2 PINGs on each connection, in ms. */
  pingIntervalMs: number;
  /**
   * Silence, beyond one ping interval and twice the connection's round trip, after which a
   * connection is closed, in ms.
   */
  timeoutMs: number;
  /**
   * Largest round-trip time the silence limit scales with, in ms; also the round trip assumed
   * until the first PING is answered (so a slow link can join).
   */
  maxRttMs: number;
  /** Logger of the agent port. */
  log: Logger;
}

/** What the gateway knows of one agent connection's liveness. */
export interface ConnectionHealth {
  /** When the connection last delivered a byte (as last checked), on the monotonic clock. */
  readonly lastHeardAt: number;
  /** Round-trip time used for the limits: the least PING round trip seen lately, capped; in ms. */
  readonly rttMs: number;
}

/** Watches the liveness of the agent port's HTTP/2 connections. */
export interface ConnectionLiveness {
  /** Starts watching a new connection; it is forgotten when it closes. */
  watch(session: http2.ServerHttp2Session): void;
  /** The connection of a peer address (as grpc-js `getPeer()` writes it), if watched. */
  health(peer: string): ConnectionHealth | undefined;
  /** Stops watching every connection (closing none). Idempotent. */
  close(): void;
}

/** PING round trips kept per connection; the least of them is its round-trip time. */
const RTT_SAMPLES = 20;
/** Most PINGs left unanswered at once on one connection. */
const MAX_OUTSTANDING_PINGS = 4;

interface Watched extends ConnectionHealth {
  lastHeardAt: number;
  rttMs: number;
  readonly session: http2.ServerHttp2Session;
  readonly peer: string;
  readonly samples: number[];
  lastBytesRead: number;
  lastPingAt: number;
  outstanding: number;
  /** Longest silence seen while alive, in ms (a figure for the close log line). */
  maxQuietMs: number;
}

/**
 * Tells a frozen or vanished agent from a busy one, per connection: every byte read from the
 * connection counts as a sign of life (a busy agent streaming audio is plainly alive), and a PING
 * every `pingIntervalMs` makes an idle live agent answer. A connection silent for longer than
 * `pingIntervalMs + timeoutMs + 2 × RTT` is closed, RTT being the least PING round trip seen
 * lately (the link's own delay, not the peers' load), at most `maxRttMs`. The decision is taken
 * after the event loop has read the sockets (in `setImmediate`), so a stall of this gateway's own
 * loop is not taken for the agent's silence.
 *
 * This replaces grpc-js's keepalive, whose fixed timeout dropped agents behind a slow link (1.4 s
 * round trip) and agents on a saturated machine.
 */
export function createConnectionLiveness(options: ConnectionLivenessOptions): ConnectionLiveness {
  const { pingIntervalMs, timeoutMs, maxRttMs, log } = options;
  const watched = new Map<string, Watched>();
  const tickMs = Math.max(10, Math.min(100, Math.floor(pingIntervalMs / 4)));
  let timer: NodeJS.Timeout | undefined;

  const silenceLimitMs = (c: Watched) => pingIntervalMs + timeoutMs + 2 * c.rttMs;

  const ping = (c: Watched, now: number) => {
    if (c.outstanding >= MAX_OUTSTANDING_PINGS || c.session.destroyed) return;
    c.lastPingAt = now;
    try {
      const sent = c.session.ping((err, durationMs) => {
        c.outstanding--;
        if (err) return;
        c.samples.push(durationMs);
        if (c.samples.length > RTT_SAMPLES) c.samples.shift();
        c.rttMs = Math.min(maxRttMs, ...c.samples);
      });
      if (sent) c.outstanding++;
    } catch {
      // The session is closing; its close handler forgets it.
    }
  };

  const check = () => {
    const now = performance.now();
    for (const c of watched.values()) {
      const bytesRead = c.session.socket?.bytesRead ?? c.lastBytesRead;
      if (bytesRead !== c.lastBytesRead) {
        c.maxQuietMs = Math.max(c.maxQuietMs, now - c.lastHeardAt);
        c.lastBytesRead = bytesRead;
        c.lastHeardAt = now;
      }
      const silentMs = now - c.lastHeardAt;
      const limitMs = silenceLimitMs(c);
      if (silentMs > limitMs) {
        log.warn(
          {
            peer: c.peer,
            silentMs: Math.round(silentMs),
            limitMs: Math.round(limitMs),
            rttMs: Math.round(c.rttMs),
          },
          "agent connection silent past its limit; closing it",
        );
        forget(c);
        c.session.destroy();
        continue;
      }
      if (now - c.lastPingAt >= pingIntervalMs) ping(c, now);
    }
  };

  // Decided after the poll phase (setImmediate), never straight from the timer: however long this
  // process was stalled, the bytes that arrived meanwhile have been read by then, so only a peer
  // that really sent nothing is silent. (Adding stalls back to the clock instead would slow it
  // down for good on a saturated machine, where every tick is late: a frozen agent went unnoticed
  // for 55 s in the load run.)
  const tick = () => setImmediate(check);

  const forget = (c: Watched) => {
    if (watched.get(c.peer) !== c) return;
    watched.delete(c.peer);
    // The longest silence of a live connection is what the limits must stay above: logged so
    // operators (and bench/liveness-load.ts) can see the margin.
    log.info(
      { peer: c.peer, rttMs: Math.round(c.rttMs), maxQuietMs: Math.round(c.maxQuietMs) },
      "agent connection closed",
    );
    if (watched.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  return {
    watch(session) {
      const socket = session.socket;
      if (!socket?.remoteAddress) return;
      const now = performance.now();
      const c: Watched = {
        session,
        peer: `${socket.remoteAddress}:${socket.remotePort}`,
        samples: [],
        rttMs: maxRttMs,
        lastHeardAt: now,
        lastBytesRead: socket.bytesRead,
        lastPingAt: 0,
        outstanding: 0,
        maxQuietMs: 0,
      };
      watched.set(c.peer, c);
      session.once("close", () => forget(c));
      if (!timer) {
        timer = setInterval(tick, tickMs);
        timer.unref();
      }
    },
    health(peer) {
      return watched.get(peer);
    },
    close() {
      clearInterval(timer);
      timer = undefined;
      watched.clear();
    },
  };
}
