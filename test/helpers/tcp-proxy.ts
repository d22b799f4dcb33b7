/**
 * A TCP proxy on 127.0.0.1 for link faults in tests: it can blackhole every connection (stop
 * moving bytes either way, closing nothing, as a dead route does) and heal it, and it can delay
 * every byte by a fixed one-way latency (a slow link; no netem on this kernel).
 */
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";

/** Options of {@link startTcpProxy}. */
export interface TcpProxyOptions {
  /** Where connections go. */
  targetPort: number;
  /** Target host. @default "127.0.0.1" */
  targetHost?: string;
  /** One-way delay added to every chunk in both directions, in ms. @default 0 */
  delayMs?: number;
}

/** A running proxy. */
export interface TcpProxy {
  /** Port the proxy listens on. */
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stops moving bytes in both directions on every connection, closing nothing. */
  blackhole(): void;
  /** Moves bytes again; what was held back (and any close) goes through. */
  heal(): void;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 (a free port) to `targetPort`. */
export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const delayMs = options.delayMs ?? 0;
  const sockets = new Set<Socket>();
  let holding = false;
  let accepted = 0;
  /** Pipes `from` into `to`, by way of the delay, pausing while the proxy holds traffic. */
  const pipe = (from: Socket, to: Socket) => {
    let pending = 0;
    from.on("data", (chunk: Buffer) => {
      if (delayMs === 0) {
        if (!to.write(chunk)) from.pause();
        return;
      }
      pending++;
      // Timers of equal delay fire in order, so the byte order is kept.
      setTimeout(() => {
        pending--;
        if (!to.destroyed) to.write(chunk);
      }, delayMs);
    });
    to.on("drain", () => {
      if (!holding) from.resume();
    });
    from.on("end", () => {
      const finish = () => to.end();
      if (pending === 0) finish();
      else setTimeout(finish, delayMs);
    });
    from.on("error", () => to.destroy());
    from.on("close", () => {
      sockets.delete(from);
      setTimeout(() => to.destroy(), delayMs);
    });
  };
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect({
      port: options.targetPort,
      host: options.targetHost ?? "127.0.0.1",
    });
    sockets.add(client);
    sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    pipe(client, upstream);
    pipe(upstream, client);
    if (holding) {
      client.pause();
      upstream.pause();
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  return {
    port: address.port,
    get accepted() {
      return accepted;
    },
    blackhole() {
      holding = true;
      for (const socket of sockets) socket.pause();
    },
    heal() {
      holding = false;
      for (const socket of sockets) socket.resume();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, "close").catch(() => {});
    },
  };
}
