import * as http from "node:http";
import type { Duplex } from "node:stream";
import type { ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { WebSocketServer } from "ws";
import { BackendAdminService } from "../../gen/voxgate/v1/backend_admin_pb.js";
import type { GateResult } from "../auth/request-gate.js";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import type { HttpRouteSpec } from "../gateway/http-route-spec.js";
import type { RelayDebugLog } from "./relay-debug-log.js";
import { toRelayError, writeRelayError } from "./relay-error.js";

/** Path of the relay's live debug WebSocket. */
export const kRelayDebugSocketPath = "/ws/debug";

/** The socket's route: a GET with `Upgrade: websocket` (HTTP/1.1). */
export const RELAY_DEBUG_SOCKET_ROUTE = {
  method: "GET",
  path: kRelayDebugSocketPath,
  service: BackendAdminService.typeName,
  doc: {
    operationId: "Relay_DebugSocket",
    tags: ["Relay"],
    summary: "The relay's live debug events over a WebSocket (an HTTP/1.1 upgrade).",
    description:
      "Sends the recent debug events as JSON text messages, then each new one as it happens " +
      "(registry changes, relay calls); messages from the client are ignored. A request " +
      "without `Upgrade: websocket` is not answered here.",
    parameters: [
      {
        name: "Upgrade",
        in: "header",
        required: true,
        schema: { type: "string", const: "websocket" },
      },
    ],
    responses: {
      "101": { description: "Switching to the WebSocket protocol." },
      default: {
        description: "A relay error (401/403 token, 503 too many sockets).",
        content: {
          "application/json": { schema: { $ref: "#/components/schemas/RelayError" } },
        },
      },
    },
  },
} satisfies HttpRouteSpec;

/** Options of {@link createRelayDebugSocket}. */
export interface RelayDebugSocketOptions {
  /** Events sent: recent ones at connect, then each new one. */
  debugLog: RelayDebugLog;
  /** The public port's gate: the socket needs a token with the `admin` scope, as `/api/v1/debug`. */
  admit(
    req: NodeRequest,
    res: NodeResponse,
    route: {
      service: string;
      writeError(req: NodeRequest, res: NodeResponse, error: ConnectError): void;
    },
  ): GateResult | undefined;
  /** Most sockets open at once. @default 16 */
  maxSockets?: number;
  /** Logger. */
  log: Logger;
}

/** The upgrade handler and a close for shutdown. */
export interface RelayDebugSocket {
  /** The route the socket answers ({@link RELAY_DEBUG_SOCKET_ROUTE}). */
  readonly routes: readonly HttpRouteSpec[];
  /** Handles an HTTP/1.1 upgrade request; refuses paths other than {@link kRelayDebugSocketPath}. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Closes every open socket. Idempotent. */
  close(): void;
}

/**
 * The relay's `/ws/debug`: a WebSocket that sends the recent debug events (registry changes,
 * relay calls) as JSON text messages, then each new one as it happens. Checked by the same gate as
 * every request (Bearer token, `admin` scope) before the upgrade; refusals are the relay's JSON
 * errors. Messages from the client are ignored (the relay only kept the socket open with them).
 */
export function createRelayDebugSocket(options: RelayDebugSocketOptions): RelayDebugSocket {
  const maxSockets = options.maxSockets ?? 16;
  const log = options.log.child({ component: "relay-debug-socket" });
  const server = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  const route = {
    service: RELAY_DEBUG_SOCKET_ROUTE.service,
    writeError: (req: NodeRequest, res: NodeResponse, error: ConnectError) =>
      writeRelayError(req, res, toRelayError(error)),
  };
  return {
    routes: [RELAY_DEBUG_SOCKET_ROUTE],
    upgrade(req, socket, head) {
      // A response written on the upgrade socket, for the gate's refusals.
      const res = new http.ServerResponse(req);
      res.assignSocket(socket as never);
      res.once("finish", () => socket.end());
      const path = (req.url ?? "").split("?")[0];
      if (path !== kRelayDebugSocketPath) {
        res.writeHead(404, { "content-type": "application/json", connection: "close" });
        res.end(JSON.stringify({ error: `no WebSocket at ${path}`, code: "not_found" }));
        return;
      }
      if (!options.admit(req, res, route)) return;
      if (server.clients.size >= maxSockets) {
        res.writeHead(503, { "content-type": "application/json", connection: "close" });
        res.end(
          JSON.stringify({
            error: `${maxSockets} debug sockets are open already`,
            code: "unavailable",
          }),
        );
        return;
      }
      res.detachSocket(socket as never);
      server.handleUpgrade(req, socket, head, (ws) => {
        for (const event of options.debugLog.recent(500)) ws.send(JSON.stringify(event));
        const unsubscribe = options.debugLog.subscribe((event) => {
          // A reader that stopped reading loses events rather than growing our memory.
          if (ws.bufferedAmount < 1024 * 1024) ws.send(JSON.stringify(event));
        });
        ws.on("close", unsubscribe);
        ws.on("error", (err) => log.debug({ err }, "debug socket failed"));
      });
    },
    close() {
      for (const client of server.clients) client.terminate();
      server.close();
    },
  };
}
