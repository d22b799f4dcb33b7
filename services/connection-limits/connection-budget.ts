import type * as net from "node:net";
import type { Logger } from "pino";

/** Caps on the connections one listener holds. */
export interface ConnectionBudgetOptions {
  /** Open connections in all (setting maxConnections, or agentMaxConnections on the agent port). */
  maxConnections: number;
  /**
   * Open connections from one client address (setting maxConnectionsPerClient, or
   * agentMaxConnectionsPerClient).
   */
  maxConnectionsPerClient: number;
  /** Logger: a refused connection can carry no message, so the refusal is logged. */
  log: Logger;
  /**
   * Names of the two settings, for the refusal log line (each port has its own).
   * @default the public port's `VOXGATE_MAX_CONNECTIONS` / `VOXGATE_MAX_CONNECTIONS_PER_CLIENT`
   */
  settingNames?: { maxConnections: string; maxConnectionsPerClient: string } | undefined;
}

/** What a connection budget counts. */
export interface ConnectionBudget {
  /** Open connections now. */
  readonly connections: number;
  /** Open connections per client address now. */
  readonly perClient: ReadonlyMap<string, number>;
}

/** Most refusals logged per second; a flood must not flood the log as well. */
const MAX_REFUSAL_LOGS_PER_SECOND = 5;

/**
 * Caps the connections `server` holds, in all and per client address, by listening to its
 * `connection` event: a connection over a cap is closed at once, before a byte of it is read, and
 * the refusal is logged naming the setting (a TCP connection can carry no message). Works on any
 * `net.Server`: the cleartext front of the public port, a TLS server (whose `connection` event
 * sees the raw socket before the handshake), an HTTP/2 server.
 */
export function attachConnectionBudget(
  server: net.Server,
  options: ConnectionBudgetOptions,
): ConnectionBudget {
  const log = options.log.child({ component: "connection-budget" });
  const names = options.settingNames ?? {
    maxConnections: "VOXGATE_MAX_CONNECTIONS",
    maxConnectionsPerClient: "VOXGATE_MAX_CONNECTIONS_PER_CLIENT",
  };
  const perClient = new Map<string, number>();
  let connections = 0;
  let logWindowStart = 0;
  let logsInWindow = 0;
  const refuse = (socket: net.Socket, address: string, reason: string) => {
    socket.destroy();
    const now = Date.now();
    if (now - logWindowStart > 1000) {
      logWindowStart = now;
      logsInWindow = 0;
    }
    if (++logsInWindow <= MAX_REFUSAL_LOGS_PER_SECOND) {
      log.warn({ client: address, reason }, "connection refused");
    }
  };
  server.on("connection", (socket: net.Socket) => {
    const address = socket.remoteAddress ?? "unknown";
    if (connections >= options.maxConnections) {
      refuse(
        socket,
        address,
        `${connections} connections open (max connections: ${names.maxConnections})`,
      );
      return;
    }
    const fromClient = perClient.get(address) ?? 0;
    if (fromClient >= options.maxConnectionsPerClient) {
      refuse(
        socket,
        address,
        `${fromClient} connections open from ${address} (max connections per client: ${names.maxConnectionsPerClient})`,
      );
      return;
    }
    connections++;
    perClient.set(address, fromClient + 1);
    socket.once("close", () => {
      connections--;
      const left = (perClient.get(address) ?? 1) - 1;
      if (left > 0) perClient.set(address, left);
      else perClient.delete(address);
    });
  });
  return {
    get connections() {
      return connections;
    },
    get perClient() {
      return perClient;
    },
  };
}
