import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import {
  attachBodyRateGuard,
  attachConnectionBudget,
  attachH2SessionGuard,
} from "../connection-limits/index.js";
import type { TlsFiles } from "../tls/tls-files.js";
import { gatewaySettings } from "./gateway-settings.js";

/** Limits of the public port. */
export interface PublicServerLimits {
  /** Concurrent HTTP/2 streams per connection. @default setting maxStreamsPerConnection */
  maxStreamsPerConnection: number;
  /** Time a client has to send its request headers, in ms. @default setting headersTimeoutMs */
  headersTimeoutMs: number;
  /** Idle time before an HTTP/1.1 keep-alive connection closes, in ms. @default 5000 */
  keepAliveTimeoutMs: number;
  /** Largest request headers, in bytes. @default setting maxHeaderBytes */
  maxHeaderBytes: number;
  /** HTTP/2 session memory per connection, in MiB. @default 64 */
  maxSessionMemoryMb: number;
  /**
   * HTTP/2 flow-control window per stream and per connection, in bytes: big enough that one
   * round trip never limits audio throughput. @default 4 MiB
   */
  windowBytes: number;
  /** Open connections in all. @default setting maxConnections */
  maxConnections: number;
  /** Open connections from one client address. @default setting maxConnectionsPerClient */
  maxConnectionsPerClient: number;
  /** Time an HTTP/2 connection may stay without an open stream, in ms. @default setting idleTimeoutMs */
  idleTimeoutMs: number;
  /**
   * Least rate a request body must arrive at, on average over each headers-timeout window, in
   * bytes per second. @default setting minBodyBytesPerSecond
   */
  minBodyBytesPerSecond: number;
}

/** Defaults of {@link PublicServerLimits}. */
export const defaultPublicServerLimits: PublicServerLimits = {
  maxStreamsPerConnection: gatewaySettings.maxStreamsPerConnection.defaultValue,
  headersTimeoutMs: gatewaySettings.headersTimeoutMs.defaultValue,
  keepAliveTimeoutMs: 5000,
  maxHeaderBytes: gatewaySettings.maxHeaderBytes.defaultValue,
  maxSessionMemoryMb: 64,
  windowBytes: 4 * 1024 * 1024,
  maxConnections: gatewaySettings.maxConnections.defaultValue,
  maxConnectionsPerClient: gatewaySettings.maxConnectionsPerClient.defaultValue,
  idleTimeoutMs: gatewaySettings.idleTimeoutMs.defaultValue,
  minBodyBytesPerSecond: gatewaySettings.minBodyBytesPerSecond.defaultValue,
};

/** Options of {@link createPublicServer}. */
export interface PublicServerOptions {
  /** Interface to listen on. */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Handles every request of either HTTP version. */
  handler: (req: NodeRequest, res: NodeResponse) => void;
  /**
   * Handles HTTP/1.1 `Upgrade` requests (WebSocket); absent: they are refused by closing the
   * connection. The handler owns `socket` from then on.
   */
  upgrade?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Limits; missing keys take {@link defaultPublicServerLimits}. */
  limits?: Partial<PublicServerLimits>;
  /**
   * Certificate and key: the port serves TLS only, choosing HTTP/2 or HTTP/1.1 by ALPN, and new
   * connections take the files' latest version. Absent: cleartext HTTP/1.1 and h2c.
   */
  tls?: TlsFiles;
  /** Logger. */
  log: Logger;
}

/** The public API port. */
export interface PublicServer {
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /**
   * Starts a drain: closes the listener (new connections are refused, so a load balancer moves
   * them to another replica without having sent anything, and the port is free for the next
   * gateway) and ends each open connection only at a moment its peer cannot be sending on it:
   * an HTTP/1.1 answer closes its connection (`Connection: close`), an HTTP/2 answer carries a
   * GOAWAY ahead of its last frame, and an idle connection is left to its peer (a load balancer
   * closes its idle upstream connections itself, see README "Running several gateways") or closed
   * after {@link PublicServerLimits.keepAliveTimeoutMs} idle. Closing an idle connection at once
   * races with a load balancer that is just sending a request on it, and that request fails
   * (nginx does not resend a POST it has sent). Idempotent.
   */
  drain(): void;
  /**
   * Open connections that may still bring a request: every connection except upgraded ones
   * (WebSocket) and HTTP/2 ones sent a GOAWAY more than {@link kGoawayNoticeMs} ago. A drain
   * lets the agents go once this is 0.
   */
  openConnections(): number;
  /**
   * Whether `req` came on an HTTP/2 connection more than {@link kGoawayNoticeMs} after the drain's
   * GOAWAY: a client that opens streams then ignores it, and is refused. Requests the peer
   * sent before it could know are served.
   */
  arrivedAfterNotice(req: NodeRequest): boolean;
  /** Stops accepting, lets running requests finish for `graceMs`, then cuts the rest. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Time after a drain's GOAWAY when a new stream on that connection is refused (503) rather
 * than served, in ms: streams sent before the peer read the notice are served. RFC 9113 6.8 asks
 * for at least one round trip; this allows a busy peer (a load balancer) many.
 */
export const kGoawayNoticeMs = 1000;

/** How far past the header limit an HTTP/2 header list may go and still be answered 431. */
const H2_HEADER_SLACK = 16;

/** Size of an HTTP/2 header list as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 6.5.2). */
function h2HeaderBytes(rawHeaders: readonly string[]): number {
  let total = 0;
  for (const field of rawHeaders) total += Buffer.byteLength(field);
  return total + (rawHeaders.length / 2) * 32;
}

/** The HTTP/2 connection preface starts with these bytes; no HTTP/1.1 method does. */
const H2_PREFACE_START = Buffer.from("PRI ");

/**
 * Serves HTTP/1.1 and cleartext HTTP/2 (h2c, prior knowledge) on one port: each connection's first
 * bytes decide which server takes it. Node's h2c server cannot fall back to HTTP/1.1 by itself
 * (`allowHTTP1` needs TLS), yet plain `curl` speaks HTTP/1.1 and gRPC needs HTTP/2.
 *
 * With `tls`, every connection goes to one HTTP/2 secure server with `allowHTTP1`: ALPN picks h2
 * or http/1.1 during the handshake. Connections still enter through the same plain listener, so
 * whatever it does per socket applies to both modes.
 */
export function createPublicServer(options: PublicServerOptions): PublicServer {
  const limits = { ...defaultPublicServerLimits, ...options.limits };
  const log = options.log.child({ component: "public-port" });
  const sockets = new Set<net.Socket>();

  const h1 = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Streams can run long; deadlines are enforced per call instead, and the body rate guard
      // below cuts bodies that dribble.
      requestTimeout: 0,
      // How often Node checks the headers timeout; its default (30 s) lets a slowloris client
      // hold a connection three times the timeout.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, limits.headersTimeoutMs / 4)),
    },
    (req, res) => {
      // HTTP/1.1 cannot tell an idle connection to go: each answer during a drain closes its
      // connection instead, so the client's next request opens a new one elsewhere.
      if (draining) res.setHeader("connection", "close");
      options.handler(req, res);
    },
  );
  // Node enforces `headersTimeout` only for connections it tracks, and it starts tracking when
  // the server emits `listening`. This server never listens itself (the front below hands it
  // connections), so without this a client that sends headers slowly, byte by byte, keeps its
  // connection forever.
  h1.emit("listening");
  /** Upgraded (WebSocket) connections open now: they bring no more requests. */
  let upgraded = 0;
  const upgrade = options.upgrade;
  const onUpgrade = upgrade
    ? (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
        upgraded++;
        socket.once("close", () => upgraded--);
        upgrade(req, socket, head);
      }
    : undefined;
  if (onUpgrade) h1.on("upgrade", onUpgrade);
  const h2Options: http2.ServerOptions = {
    maxSessionMemory: limits.maxSessionMemoryMb,
    maxHeaderListPairs: 128,
    settings: {
      maxConcurrentStreams: limits.maxStreamsPerConnection,
      initialWindowSize: Math.min(limits.windowBytes, 2 ** 31 - 1),
      // nghttp2 refuses a stream past this size with a bare RST_STREAM; allowing more than
      // the limit lets oversized headers reach the handler below, which answers 431.
      maxHeaderListSize: Math.min(limits.maxHeaderBytes * H2_HEADER_SLACK, 2 ** 31 - 1),
    },
  };
  const h2Handler = (req: NodeRequest, res: NodeResponse) => {
    if (h2HeaderBytes(req.rawHeaders) > limits.maxHeaderBytes) {
      res.writeHead(431, { "content-type": "text/plain" });
      res.end(
        `request headers exceed ${limits.maxHeaderBytes} bytes (max header bytes: VOXGATE_MAX_HEADER_BYTES)\n`,
      );
      return;
    }
    // HTTP/1.1 over TLS (ALPN) lands here too.
    if (draining && req.httpVersionMajor === 1) res.setHeader("connection", "close");
    if (req.httpVersionMajor === 2) noticeBeforeEnd(req, res);
    options.handler(req, res);
  };
  const tlsFiles = options.tls;
  const h2: http2.Http2Server | http2.Http2SecureServer = tlsFiles
    ? http2.createSecureServer(
        {
          ...h2Options,
          allowHTTP1: true,
          cert: tlsFiles.current.cert,
          key: tlsFiles.current.key,
          // A client that opens a socket and never finishes the handshake holds it no longer.
          handshakeTimeout: limits.headersTimeoutMs,
        },
        h2Handler,
      )
    : http2.createServer(h2Options, h2Handler);
  const stopFollowingFiles = tlsFiles?.onChange((material) => {
    // Only new handshakes use it; established connections and their streams keep theirs.
    (h2 as http2.Http2SecureServer).setSecureContext({ cert: material.cert, key: material.key });
  });
  if (tlsFiles) {
    // HTTP/1.1 over TLS runs Node's HTTP/1.1 code with this server's fields, whose defaults differ
    // from the cleartext server above: a 300 s request timeout (a long upload would be cut) and
    // no keep-alive timeout (idle sockets would stay forever). Give it the same limits.
    Object.assign(h2, {
      requestTimeout: 0,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
    });
    // Failed handshakes (a scanner, a client that does not trust us) must not crash or spam.
    h2.on("tlsClientError", (err: Error, socket: net.Socket) => {
      log.debug({ err: err.message }, "TLS handshake failed");
      socket.destroy();
    });
    // An established TLS socket that errors (a reset mid-stream) is closed, never thrown.
    h2.on("secureConnection", (socket: net.Socket) => {
      socket.on("error", () => socket.destroy());
    });
  }
  attachH2SessionGuard(h2, {
    firstStreamTimeoutMs: limits.headersTimeoutMs,
    idleTimeoutMs: limits.idleTimeoutMs,
    log,
  });
  for (const server of [h1, h2]) {
    attachBodyRateGuard(server, {
      minBytesPerSecond: limits.minBodyBytesPerSecond,
      windowMs: limits.headersTimeoutMs,
      log,
    });
  }
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  /** When each HTTP/2 session was sent the drain's GOAWAY (monotonic ms). */
  const noticedAt = new WeakMap<http2.ServerHttp2Session, number>();
  /** Streams open on each HTTP/2 session, and when one last opened and last ended (monotonic ms). */
  const activity = new WeakMap<
    http2.ServerHttp2Session,
    { open: number; openedAt: number; activeAt: number }
  >();
  let draining = false;
  let sweep: NodeJS.Timeout | undefined;
  const notice = (session: http2.ServerHttp2Session) => {
    if (session.closed || session.destroyed) return;
    try {
      // RFC 9113 6.8 asks for the highest stream id here, announcing the shutdown without
      // refusing streams already on their way; nghttp2 lowers it to the last stream received,
      // so those are refused (REFUSED_STREAM, safe to retry). Running streams go on.
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1);
      noticedAt.set(session, performance.now());
    } catch {
      // The session closed meanwhile.
    }
  };
  /**
   * During a drain, an HTTP/2 answer sends the GOAWAY before its last frame: a load balancer that
   * proxies one stream per connection (nginx's grpc_pass) reads it while its request is still
   * running, so it finishes that request and does not reuse the connection. A GOAWAY on an idle
   * connection instead races with the balancer sending a new stream on it, which the GOAWAY
   * then refuses ("upstream sent goaway with error 0": a 502 nginx does not retry).
   */
  const noticeBeforeEnd = (req: NodeRequest, res: NodeResponse) => {
    const session = (req as http2.Http2ServerRequest).stream?.session as
      | http2.ServerHttp2Session
      | undefined;
    if (!session) return;
    const end = res.end;
    res.end = function (this: NodeResponse, ...args: unknown[]) {
      if (draining && !noticedAt.has(session)) notice(session);
      return (end as (...a: unknown[]) => NodeResponse).apply(this, args);
    } as typeof res.end;
  };
  /**
   * Ends what a peer left idle during a drain: a session without a new stream for the keep-alive
   * time is sent a GOAWAY (its running streams, such as watches, go on), and closed once it has
   * no stream either. A load balancer closes its own idle connections sooner (README).
   */
  const sweepIdle = () => {
    const now = performance.now();
    for (const session of h2Sessions) {
      const seen = activity.get(session);
      if (!seen || session.closed || session.destroyed) continue;
      if (now - seen.openedAt < limits.keepAliveTimeoutMs) continue;
      if (!noticedAt.has(session)) notice(session);
      if (seen.open === 0 && now - seen.activeAt >= limits.keepAliveTimeoutMs) session.close();
    }
  };
  h2.on("session", (session) => {
    const seen = { open: 0, openedAt: performance.now(), activeAt: performance.now() };
    activity.set(session, seen);
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      seen.open++;
      seen.openedAt = seen.activeAt = performance.now();
      stream.once("close", () => {
        seen.open--;
        seen.activeAt = performance.now();
      });
    });
    h2Sessions.add(session);
    session.once("close", () => h2Sessions.delete(session));
    // The connection-level window is not a SETTINGS value; widen it once the session exists.
    session.once("localSettings", () => {
      try {
        session.setLocalWindowSize(limits.windowBytes);
      } catch {
        // The session closed before we got to it.
      }
    });
  });

  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    if (tlsFiles) {
      // TLS: the handshake's ALPN, not the first bytes, decides the protocol. Node's HTTP/1.1
      // server turns Nagle off on its sockets, but its HTTP/1.1-over-TLS fallback does not:
      // without this a small response waits for the client's delayed ACK (~40 ms).
      socket.setNoDelay(true);
      h2.emit("connection", socket);
      return;
    }
    // A client that connects and says nothing holds a socket; give it the headers timeout.
    socket.setTimeout(limits.headersTimeoutMs, () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (
        head.length < H2_PREFACE_START.length &&
        H2_PREFACE_START.subarray(0, head.length).equals(head)
      ) {
        return; // need more bytes to decide
      }
      socket.off("data", onData);
      socket.pause();
      socket.setTimeout(0);
      socket.unshift(head);
      if (head.subarray(0, H2_PREFACE_START.length).equals(H2_PREFACE_START)) {
        // The HTTP/2 session reads the buffered preface and takes the socket over; resuming the
        // socket here as well would deliver those bytes twice.
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });

  attachConnectionBudget(front, {
    maxConnections: limits.maxConnections,
    maxConnectionsPerClient: limits.maxConnectionsPerClient,
    log,
  });

  let closing: Promise<void> | undefined;
  return {
    drain() {
      if (draining) return;
      draining = true;
      // Closing the listener resets the connections the kernel accepted that Node has not taken
      // yet, and their requests are lost; closing after this turn's accepts ran keeps that window
      // to the instant between them.
      setImmediate(() => front.close());
      sweep = setInterval(sweepIdle, 250);
      sweep.unref();
      log.info({ connections: sockets.size }, "public port draining: listener closed");
    },
    openConnections() {
      const now = performance.now();
      let goneAway = 0;
      for (const session of h2Sessions) {
        const at = noticedAt.get(session);
        if (at !== undefined && now - at > kGoawayNoticeMs) goneAway++;
      }
      return Math.max(0, sockets.size - upgraded - goneAway);
    },
    arrivedAfterNotice(req) {
      const session = (req as http2.Http2ServerRequest).stream?.session;
      const at = session ? noticedAt.get(session as http2.ServerHttp2Session) : undefined;
      return at !== undefined && performance.now() - at > kGoawayNoticeMs;
    },
    listen() {
      return new Promise((resolve, reject) => {
        front.once("error", reject);
        front.listen(options.port, options.host, () => {
          front.off("error", reject);
          const address = front.address() as net.AddressInfo;
          log.info(
            {
              host: options.host,
              port: address.port,
              tls: tlsFiles ? "on" : "off",
              ...(tlsFiles ? { fingerprint256: tlsFiles.current.fingerprint256 } : {}),
            },
            "public port listening",
          );
          resolve(address.port);
        });
      });
    },
    close(graceMs = 2000) {
      closing ??= new Promise<void>((resolve) => {
        draining = true;
        clearInterval(sweep);
        stopFollowingFiles?.();
        front.close();
        h1.close();
        h2.close();
        h1.closeIdleConnections();
        // GOAWAY: running streams finish, no new ones start.
        for (const session of h2Sessions) session.close();
        const force = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        force.unref();
        const check = setInterval(() => {
          if (sockets.size === 0) {
            clearInterval(check);
            clearTimeout(force);
            resolve();
          }
        }, 20);
      });
      return closing;
    },
  };
}
