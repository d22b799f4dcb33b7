/**
 * Test helper: a real connect-node HTTP server on 127.0.0.1 port 0 serving whatever fake service
 * implementations a test registers, speaking Connect, gRPC and gRPC-Web like the gateway's public
 * port. It checks bearer tokens and records calls, so client and CLI tests run against real
 * sockets without the real gateway. Not part of the client API.
 */
import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import type * as net from "node:net";
import { Code, ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

/** Options of {@link startFakeGateway}. */
export interface FakeGatewayOptions {
  /** Registers the fake services, e.g. `(router) => router.service(TtsService, fakeTts)`. */
  routes: (router: ConnectRouter) => void;
  /**
   * HTTP version served: `"1.1"` (Connect and gRPC-Web, the CLI's default) or `"2"`, cleartext
   * HTTP/2 (h2c; all protocols, gRPC included). Unlike the gateway's public port, the fake serves
   * one version only; a client speaking the other fails.
   * @default "1.1"
   */
  httpVersion?: "1.1" | "2" | undefined;
  /**
   * Token every call but `grpc.health.v1.Health` must present as `Authorization: Bearer …`;
   * others fail with UNAUTHENTICATED. Unset means no auth.
   */
  token?: string | undefined;
}

/** A call the fake gateway received. */
export interface RecordedCall {
  /** Full procedure path, e.g. `/voxgate.v1.TtsService/StreamSynthesize`. */
  procedure: string;
  /** `Authorization` header as received, or null. */
  authorization: string | null;
  /** `Content-Type` header, which tells the protocol and codec. */
  contentType: string | null;
}

/** A running fake gateway. */
export interface FakeGateway {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Calls received so far, in order. */
  calls: RecordedCall[];
  /** Open client connections (HTTP/2 sessions or HTTP/1.1 sockets) right now. */
  openConnections(): number;
  /** Resolves once every client connection has gone, or rejects after `timeoutMs`. */
  waitForNoConnections(timeoutMs?: number): Promise<void>;
  /** Destroys open connections and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** Starts a fake gateway on 127.0.0.1 and an ephemeral port. Close it in `afterEach`. */
export async function startFakeGateway(options: FakeGatewayOptions): Promise<FakeGateway> {
  const calls: RecordedCall[] = [];
  const record: Interceptor = (next) => async (req) => {
    calls.push({
      procedure: new URL(req.url).pathname,
      authorization: req.header.get("authorization"),
      contentType: req.header.get("content-type"),
    });
    if (
      options.token !== undefined &&
      req.service.typeName !== "grpc.health.v1.Health" &&
      req.header.get("authorization") !== `Bearer ${options.token}`
    ) {
      throw new ConnectError("missing or unknown bearer token", Code.Unauthenticated);
    }
    return next(req);
  };
  const handler = connectNodeAdapter({ routes: options.routes, interceptors: [record] });

  const connections = new Set<{ destroy(): void }>();
  const changed = new EventTarget();
  const track = (connection: net.Socket | http2.ServerHttp2Session): void => {
    connections.add(connection);
    connection.once("close", () => {
      connections.delete(connection);
      changed.dispatchEvent(new Event("change"));
    });
  };
  let server: http.Server | http2.Http2Server;
  if (options.httpVersion === "2") {
    const h2 = http2.createServer(handler);
    h2.on("session", track);
    server = h2;
  } else {
    const h1 = http.createServer(handler);
    h1.on("connection", track);
    server = h1;
  }
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    openConnections: () => connections.size,
    async waitForNoConnections(timeoutMs = 2_000) {
      const deadline = AbortSignal.timeout(timeoutMs);
      while (connections.size > 0) {
        await once(changed, "change", { signal: deadline }).catch(() => {
          throw new Error(`${connections.size} connection(s) still open after ${timeoutMs} ms`);
        });
      }
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        for (const connection of connections) connection.destroy();
      });
      return closing;
    },
  };
}
