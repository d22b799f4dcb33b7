/**
 * HTTP/2 client plumbing with wide flow-control windows. A receiver's window caps what a sender
 * may have in flight; at Node's 64 KiB default a 10 MB answer stalls on every round trip, which
 * would measure the client, not the relay. Every path in a benchmark uses the same windows.
 */
import type * as http2 from "node:http2";
import type { Interceptor, Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";

/** Receive window per stream and per connection used by benchmark clients, in bytes (8 MiB). */
export const BENCH_WINDOW_BYTES = 8 * 1024 * 1024;

/** HTTP/2 session options with {@link BENCH_WINDOW_BYTES} as the per-stream window. */
export const wideWindowSessionOptions: http2.ClientSessionOptions = {
  settings: { initialWindowSize: BENCH_WINDOW_BYTES },
};

/** Widens the connection-level window of `session` once (it is not a SETTINGS value). */
export function widenConnectionWindow(session: http2.ClientHttp2Session): void {
  const widened = session as http2.ClientHttp2Session & { benchWidened?: boolean };
  if (widened.benchWidened) return;
  widened.benchWidened = true;
  session.setLocalWindowSize(BENCH_WINDOW_BYTES);
}

/** A connect-node session manager that widens each new connection's window. */
class WideWindowSessionManager extends Http2SessionManager {
  override async request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): Promise<http2.ClientHttp2Stream> {
    const stream = await super.request(method, path, headers, options);
    widenConnectionWindow(stream.session as http2.ClientHttp2Session);
    return stream;
  }
}

/** A transport plus the way to release its connection. */
export interface ClosableTransport {
  /** The Connect transport. */
  transport: Transport;
  /** Aborts the HTTP/2 connection. */
  close(): void;
}

/**
 * Creates a connect-node transport over one h2c connection with wide windows: gRPC (binary) or
 * the Connect protocol. Compression is off both ways: audio does not compress.
 */
export function createWideTransport(
  baseUrl: string,
  protocol: "grpc" | "connect",
  token?: string,
): ClosableTransport {
  const sessionManager = new WideWindowSessionManager(
    baseUrl,
    { pingIntervalMs: 60_000, pingIdleConnection: false },
    wideWindowSessionOptions,
  );
  const interceptors: Interceptor[] = token
    ? [
        (next) => async (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ]
    : [];
  const common = {
    baseUrl,
    httpVersion: "2" as const,
    sessionManager,
    useBinaryFormat: true,
    acceptCompression: [],
    interceptors,
  };
  const transport =
    protocol === "grpc" ? createGrpcTransport(common) : createConnectTransport(common);
  return { transport, close: () => sessionManager.abort() };
}
