/**
 * The typed client factory: every public voxgate service over one transport.
 *
 * ```ts
 * const voxgate = createVoxgateClient({ baseUrl: "http://127.0.0.1:8080", token });
 * try {
 *   for await (const chunk of voxgate.tts.streamSynthesize({ text: "Hello" })) {
 *     out.write(chunk.data);
 *   }
 * } finally {
 *   voxgate.close();
 * }
 * ```
 */
import * as http from "node:http";
import type * as http2 from "node:http2";
import * as https from "node:https";
import type * as net from "node:net";
import * as tls from "node:tls";
import type { Interceptor, Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { defaultCaCertificates } from "../services/tls/trust-store.js";
import {
  bearerToken,
  checkCommonOptions,
  createVoxgateServiceClients,
  VOXGATE_PROTOCOLS,
  type VoxgateProtocol,
  type VoxgateServiceClients,
} from "./service-clients.js";

/** HTTP version of a voxgate client. `"2"` over `http:` URLs is cleartext HTTP/2 (h2c). */
export type VoxgateHttpVersion = "1.1" | "2";

/** Options of {@link createVoxgateClient} and {@link createVoxgateTransport}. */
export interface VoxgateClientOptions {
  /**
   * URL of the gateway's public port, e.g. `http://127.0.0.1:8080`. `http:` is cleartext, `https:`
   * is TLS. A path prefix (`https://example.com/voxgate`) is kept in front of every RPC path.
   */
  baseUrl: string;
  /**
   * Bearer token sent as `Authorization: Bearer <token>` on every call. Leave it out for a gateway
   * without auth, or for calls that need none (health checks).
   */
  token?: string | undefined;
  /**
   * Wire protocol.
   * @default "connect"
   */
  protocol?: VoxgateProtocol | undefined;
  /**
   * HTTP version. gRPC needs HTTP/2, and so do client- and bidi-streaming calls
   * (`prompts.putPrompt`) in every protocol; server streams (`tts.streamSynthesize`) work on both.
   * @default "2" for `grpc`, "1.1" otherwise
   */
  httpVersion?: VoxgateHttpVersion | undefined;
  /**
   * Deadline of each call, in milliseconds, unless the call passes its own `timeoutMs`. A call may
   * pass `timeoutMs: 0` to run without one (long watches).
   * @default 30_000
   */
  timeoutMs?: number | undefined;
  /**
   * Binary protobuf on the wire; `false` sends JSON (Connect and gRPC-Web only), handy with a proxy
   * log open.
   * @default true
   */
  useBinaryFormat?: boolean | undefined;
  /**
   * More CA certificates (PEM) to trust for an `https:` baseUrl, e.g. a private CA, in addition
   * to Node's bundled roots, the operating system's store and `NODE_EXTRA_CA_CERTS`.
   * @default none
   */
  ca?: string | Buffer | readonly (string | Buffer)[] | undefined;
  /**
   * More interceptors, run after the one that adds the token, in order.
   * @default []
   */
  interceptors?: readonly Interceptor[] | undefined;
}

/** A transport that owns its connections: {@link VoxgateTransport.close} releases them. */
export interface VoxgateTransport extends Transport {
  /**
   * Closes the transport's connections: aborts the HTTP/2 session (failing calls still open on it)
   * or destroys the HTTP/1.1 sockets, so nothing keeps the process alive. Idempotent. A call made
   * afterwards opens a new connection, which this method does not track; do not reuse a closed
   * transport.
   */
  close(): void;
}

/** Typed clients of every public voxgate service plus `close()` for their shared connection. */
export interface VoxgateClient extends VoxgateServiceClients {
  /** Releases the connection; see {@link VoxgateTransport.close}. Idempotent. */
  close(): void;
}

export type { VoxgateProtocol, VoxgateServiceClients } from "./service-clients.js";
export { createVoxgateServiceClients, VOXGATE_PROTOCOLS } from "./service-clients.js";

/**
 * Creates typed clients of every public voxgate service over one transport built from `options`
 * (see {@link createVoxgateTransport}). Call `close()` when done, or an HTTP/2 session keeps the
 * process alive until its idle timeout.
 *
 * @throws Error for an invalid option (URL, protocol, HTTP version, timeout, token).
 */
export function createVoxgateClient(options: VoxgateClientOptions): VoxgateClient {
  const transport = createVoxgateTransport(options);
  return { ...createVoxgateServiceClients(transport), close: () => transport.close() };
}

/**
 * Creates the transport {@link createVoxgateClient} uses: Connect, gRPC or gRPC-Web over Node's
 * `http`/`https` (HTTP/1.1, a private keep-alive agent) or `http2` (one session, owned by the
 * transport), with the bearer token interceptor and the default deadline.
 *
 * @throws Error for an invalid option: a URL that is not http(s), an unknown protocol or HTTP
 * version, gRPC over HTTP/1.1, a negative or non-finite timeout, or a token that is empty or not
 * a valid header value.
 */
export function createVoxgateTransport(options: VoxgateClientOptions): VoxgateTransport {
  const resolved = resolveOptions(options);
  const interceptors: Interceptor[] = [];
  if (resolved.token !== undefined) interceptors.push(bearerToken(resolved.token));
  interceptors.push(...(options.interceptors ?? []));
  const common = {
    baseUrl: resolved.baseUrl,
    useBinaryFormat: resolved.useBinaryFormat,
    defaultTimeoutMs: resolved.timeoutMs,
    interceptors,
  };

  let close: () => void;
  let transport: Transport;
  // Node drops its default roots once `ca` is given: merge them in. The context is built once
  // here: parsing some 300 CA certificates takes tens of milliseconds, too much for every
  // connection.
  const tlsOptions =
    resolved.tls && options.ca !== undefined
      ? {
          secureContext: tls.createSecureContext({
            ca: [...defaultCaCertificates(), ...[options.ca].flat()],
          }),
        }
      : {};
  if (resolved.httpVersion === "2") {
    const sessions = createSessionManager(resolved.baseUrl, tlsOptions);
    close = sessions.close;
    const nodeOptions = {
      ...common,
      httpVersion: "2",
      sessionManager: sessions.sessionManager,
    } as const;
    transport = createProtocolTransport(resolved.protocol, nodeOptions);
  } else {
    const agent = resolved.tls
      ? createHttpsAgent({ keepAlive: true, ...tlsOptions })
      : new http.Agent({ keepAlive: true });
    close = () => agent.destroy();
    const nodeOptions = { ...common, httpVersion: "1.1", nodeOptions: { agent } } as const;
    transport = createProtocolTransport(resolved.protocol, nodeOptions);
  }
  let closed = false;
  return Object.assign(transport, {
    close(): void {
      if (closed) return;
      closed = true;
      close();
    },
  });
}

/**
 * An HTTPS keep-alive agent whose sockets send at once (Nagle off). Node's `https.Agent` leaves
 * Nagle on (its `noDelay` option does not reach TLS sockets on Node 20), and connect-node writes a
 * request body and its end separately: the second write then waits for the server's delayed ACK,
 * about 40 ms on every call.
 */
function createHttpsAgent(options: https.AgentOptions): https.Agent {
  const agent = new https.Agent(options);
  const withNagle = agent as unknown as {
    createConnection(options: unknown, callback?: unknown): net.Socket | undefined;
  };
  const create = withNagle.createConnection.bind(agent);
  withNagle.createConnection = (connectOptions, callback) => {
    const socket = create(connectOptions, callback);
    socket?.setNoDelay(true);
    return socket;
  };
  return agent;
}

type SessionManager = NonNullable<
  Extract<Parameters<typeof createConnectTransport>[0], { httpVersion: "2" }>["sessionManager"]
>;

/**
 * Wraps connect-node's `Http2SessionManager` so `close()` can abort the session; left alone,
 * connect-node keeps it until its 15 minute idle timeout.
 *
 * Every session also gets a no-op `error` listener: when a session has failed (the peer reset it,
 * or spoke HTTP/1.1) and is then aborted, Node may emit a second `error` after the manager has
 * detached its listeners, which would otherwise crash the process as an uncaught exception.
 * The manager still sees every error through its own listeners.
 */
function createSessionManager(
  baseUrl: string,
  tlsOptions: http2.SecureClientSessionOptions,
): {
  sessionManager: SessionManager;
  close: () => void;
} {
  const manager = new Http2SessionManager(baseUrl, undefined, tlsOptions);
  const guarded = new WeakSet<http2.Http2Session>();
  const ignore = (): void => {};
  return {
    sessionManager: {
      authority: manager.authority,
      async request(method, path, headers, options) {
        const stream = await manager.request(method, path, headers, options);
        const session = stream.session;
        if (session !== undefined && !guarded.has(session)) {
          guarded.add(session);
          session.on("error", ignore);
        }
        return stream;
      },
      notifyResponseByteRead: (stream) => manager.notifyResponseByteRead(stream),
    },
    close: () => manager.abort(),
  };
}

type NodeOptions = Parameters<typeof createConnectTransport>[0] &
  Parameters<typeof createGrpcTransport>[0] &
  Parameters<typeof createGrpcWebTransport>[0];

function createProtocolTransport(protocol: VoxgateProtocol, options: NodeOptions): Transport {
  switch (protocol) {
    case "connect":
      return createConnectTransport(options);
    case "grpc":
      return createGrpcTransport(options);
    case "grpc-web":
      return createGrpcWebTransport(options);
  }
}

interface ResolvedOptions {
  baseUrl: string;
  tls: boolean;
  token: string | undefined;
  protocol: VoxgateProtocol;
  httpVersion: VoxgateHttpVersion;
  timeoutMs: number;
  useBinaryFormat: boolean;
}

function resolveOptions(options: VoxgateClientOptions): ResolvedOptions {
  const { url, timeoutMs } = checkCommonOptions(options);
  const protocol = options.protocol ?? "connect";
  if (!VOXGATE_PROTOCOLS.includes(protocol)) {
    throw new Error(`protocol must be one of ${VOXGATE_PROTOCOLS.join(", ")}, got "${protocol}"`);
  }
  const httpVersion = options.httpVersion ?? (protocol === "grpc" ? "2" : "1.1");
  if (httpVersion !== "1.1" && httpVersion !== "2") {
    throw new Error(`httpVersion must be "1.1" or "2", got "${String(httpVersion)}"`);
  }
  if (protocol === "grpc" && httpVersion !== "2") {
    throw new Error('gRPC needs HTTP/2: use httpVersion "2" or another protocol');
  }
  return {
    baseUrl: options.baseUrl,
    tls: url.protocol === "https:",
    token: options.token,
    protocol,
    httpVersion,
    timeoutMs,
    useBinaryFormat: options.useBinaryFormat ?? true,
  };
}
