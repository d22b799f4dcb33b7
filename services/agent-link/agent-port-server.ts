import type * as http2 from "node:http2";
import * as net from "node:net";
import type { TLSSocket } from "node:tls";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import { AgentService, type CallRequest } from "../../gen/voxgate/v1/agent_pb.js";
import { parseBearer } from "../auth/bearer.js";
import type { Principal, TokenStore } from "../auth/token-store.js";
import { attachConnectionBudget, attachH2SessionGuard } from "../connection-limits/index.js";
import { gatewaySettings } from "../gateway/gateway-settings.js";
import { createGrpcServiceDefinition } from "../grpc/service-definition.js";
import type { BackendRegistry } from "../registry/index.js";
import { certificateIdentities } from "../tls/cert-identity.js";
import { ReloadingServerCredentials } from "../tls/grpc-server-credentials.js";
import type { TlsFiles } from "../tls/tls-files.js";
import { AgentSession, type AgentSessionOptions } from "./agent-session.js";
import type { CallStream, ControlStream } from "./agent-streams.js";
import { type CallBroker, createCallBroker } from "./call-broker.js";
import { type ConnectionLiveness, createConnectionLiveness } from "./connection-liveness.js";
import type { PromptSource } from "./prompt-source.js";

/** Metadata key an agent puts on call streams to name its session. */
export const kSessionMetadata = "x-voxgate-session";

/** Limits and timings of the agent port. Every one has a default; none is unlimited. */
export interface AgentPortLimits {
  /** Largest message either way, in bytes. @default setting agentMaxMessageBytes */
  maxMessageBytes: number;
  /** Concurrent streams per agent connection (control + calls). @default setting agentMaxStreams */
  maxConcurrentStreams: number;
  /**
   * Idle call streams one agent session may hold open in advance; calls start on them without a
   * work offer round trip. More are refused with RESOURCE_EXHAUSTED. @default setting agentMaxStandbyStreams
   */
  maxStandbyStreams: number;
  /**
   * Interval of HTTP/2 PINGs on each agent connection, in ms (see
   * {@link createConnectionLiveness}). @default setting agentKeepaliveMs
   */
  keepaliveTimeMs: number;
  /**
   * Silence beyond one ping interval and twice the connection's round trip after which an agent
   * connection is closed, in ms: a local agent silent for 1000 + 1500 ms is gone. @default setting agentKeepaliveTimeoutMs
   */
  keepaliveTimeoutMs: number;
  /**
   * Largest round-trip time the liveness limits scale with, in ms; assumed until an agent's first
   * PING answer, so an agent up to this far away can join. @default setting agentMaxRttMs
   */
  maxRttMs: number;
  /** Shortest interval an agent may ping at, in ms (faster pings get GOAWAY). @default 5000 */
  minAgentPingIntervalMs: number;
  /** HTTP/2 session memory per connection, in MiB. @default 64 */
  maxSessionMemoryMb: number;
  /**
   * HTTP/2 receive window per stream and per connection, in bytes: what an agent may have in
   * flight before the gateway acknowledges it. At nghttp2's 64 KiB default one round trip caps
   * each agent's audio throughput. @default 8 MiB
   */
  windowBytes: number;
  /** Interval agents must heartbeat at, in ms. @default setting heartbeatIntervalMs */
  heartbeatIntervalMs: number;
  /**
   * Heartbeat intervals (plus twice the connection's round trip) that may pass with neither a
   * heartbeat nor any byte on the agent's connection before its session ends. @default setting heartbeatMissLimit
   */
  heartbeatMissLimit: number;
  /** Time an agent has to say hello, in ms. @default setting agentHelloTimeoutMs */
  helloTimeoutMs: number;
  /** Time an agent has to open the stream for an offered call, in ms. @default setting agentAcceptTimeoutMs */
  acceptTimeoutMs: number;
  /** Most slots an agent may claim. @default setting agentMaxSlots */
  maxAgentSlots: number;
  /** Least routing priority an agent may claim (lower is preferred). @default setting agentMinPriority */
  minAgentPriority: number;
  /** Greatest routing priority an agent may claim. @default setting agentMaxPriority */
  maxAgentPriority: number;
  /** Most preset voices one agent may list. @default setting agentMaxVoices */
  maxAgentVoices: number;
  /** Open connections on the agent port in all. @default setting agentMaxConnections */
  maxConnections: number;
  /**
   * Open connections from one address (agents behind one NAT share it, so this is generous).
   * @default setting agentMaxConnectionsPerClient
   */
  maxConnectionsPerClient: number;
  /**
   * Time a new connection has to open its first stream (TLS, HTTP/2 preface and the control
   * stream's headers), in ms; a connection without one is closed. @default setting agentFirstStreamTimeoutMs
   */
  firstStreamTimeoutMs: number;
  /** Time a connection may stay without an open stream before GOAWAY, in ms. @default setting agentIdleTimeoutMs */
  idleTimeoutMs: number;
}

/** Defaults of {@link AgentPortLimits}. */
export const defaultAgentPortLimits: AgentPortLimits = {
  maxMessageBytes: gatewaySettings.agentMaxMessageBytes.defaultValue,
  maxConcurrentStreams: gatewaySettings.agentMaxStreams.defaultValue,
  maxStandbyStreams: gatewaySettings.agentMaxStandbyStreams.defaultValue,
  keepaliveTimeMs: gatewaySettings.agentKeepaliveMs.defaultValue,
  keepaliveTimeoutMs: gatewaySettings.agentKeepaliveTimeoutMs.defaultValue,
  maxRttMs: gatewaySettings.agentMaxRttMs.defaultValue,
  minAgentPingIntervalMs: 5000,
  maxSessionMemoryMb: 64,
  windowBytes: 8 * 1024 * 1024,
  heartbeatIntervalMs: gatewaySettings.heartbeatIntervalMs.defaultValue,
  heartbeatMissLimit: gatewaySettings.heartbeatMissLimit.defaultValue,
  helloTimeoutMs: gatewaySettings.agentHelloTimeoutMs.defaultValue,
  acceptTimeoutMs: gatewaySettings.agentAcceptTimeoutMs.defaultValue,
  maxAgentSlots: gatewaySettings.agentMaxSlots.defaultValue,
  minAgentPriority: gatewaySettings.agentMinPriority.defaultValue,
  maxAgentPriority: gatewaySettings.agentMaxPriority.defaultValue,
  maxAgentVoices: gatewaySettings.agentMaxVoices.defaultValue,
  maxConnections: gatewaySettings.agentMaxConnections.defaultValue,
  maxConnectionsPerClient: gatewaySettings.agentMaxConnectionsPerClient.defaultValue,
  firstStreamTimeoutMs: gatewaySettings.agentFirstStreamTimeoutMs.defaultValue,
  idleTimeoutMs: gatewaySettings.agentIdleTimeoutMs.defaultValue,
};

/** Options of {@link createAgentPortServer}. */
export interface AgentPortServerOptions {
  /** Interface to listen on. */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Tokens; only those with the `agent` scope are accepted here. */
  tokens: TokenStore;
  /** Registry agents join. */
  registry: BackendRegistry;
  /** Root logger. */
  log: Logger;
  /** Limits; missing keys take {@link defaultAgentPortLimits}. */
  limits?: Partial<AgentPortLimits>;
  /**
   * Where clone prompts are read when an agent's cache lacks one a call needs (the prompt
   * store). Absent: such calls fail with FAILED_PRECONDITION "this gateway has no prompt store".
   */
  promptSource?: PromptSource;
  /** Observes clone prompt hits and deliveries of calls to agents (metrics). */
  onPromptDelivery?: AgentSessionOptions["onPromptDelivery"];
  /**
   * TLS of the agent port; absent: cleartext gRPC. With a client CA in `files` (mTLS) every call
   * must come over a connection whose client certificate that CA signed.
   */
  tls?: AgentPortTls;
}

/** TLS settings of the agent port. */
export interface AgentPortTls {
  /** Certificate, key and optional client CA, reloaded when they change. */
  files: TlsFiles;
  /**
   * Require the client certificate to name the agent id of the hello (its CN, a DNS SAN, a URI SAN
   * or that URI's last segment), so one agent's certificate cannot join as another. Needs a
   * client CA. @default setting agentCertMatchId
   */
  requireAgentIdentity?: boolean;
}

/** The agent port: where GPU hosts dial in. */
export interface AgentPortServer {
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /** Sessions currently open. */
  readonly sessions: ReadonlySet<AgentSession>;
  /**
   * Starts a drain: stops listening (new connections are refused, so an agent dialling this
   * address reaches the next gateway there), reports NOT_SERVING, refuses new sessions and tells
   * every agent to go (GatewayLeaving). Calls running on agents finish on their own streams.
   * Idempotent.
   */
  drain(reason: string): void;
  /**
   * Closes the listener only: new agent connections are refused (the port is free for the next
   * gateway) while established sessions and their calls go on. Idempotent; {@link drain} does it
   * too.
   */
  closeListener(): void;
  /**
   * Checks every open session's token against the (reloaded) token store: a session whose token
   * is no longer accepted with the agent scope ends at once with PERMISSION_DENIED, its running
   * calls cancelled. Returns how many ended.
   */
  recheckTokens(): number;
  /**
   * Closes the port: ends every session (agents reconnect elsewhere or later) and stops the
   * server, forcing it after `graceMs`. Idempotent.
   */
  close(graceMs?: number): Promise<void>;
}

/** Creates the agent port server (gRPC only, separate from the public port). */
export function createAgentPortServer(options: AgentPortServerOptions): AgentPortServer {
  const limits: AgentPortLimits = { ...defaultAgentPortLimits, ...options.limits };
  const log = options.log.child({ component: "agent-port" });
  const broker: CallBroker = createCallBroker({ acceptTimeoutMs: limits.acceptTimeoutMs });
  const sessions = new Map<string, AgentSession>();
  const liveness = createConnectionLiveness({
    pingIntervalMs: limits.keepaliveTimeMs,
    timeoutMs: limits.keepaliveTimeoutMs,
    maxRttMs: limits.maxRttMs,
    log,
  });
  const server = new grpc.Server({
    "grpc.max_receive_message_length": limits.maxMessageBytes,
    "grpc.max_send_message_length": limits.maxMessageBytes,
    "grpc.max_concurrent_streams": limits.maxConcurrentStreams,
    // Keepalive is ours (connection-liveness.ts): grpc-js's fixed ping timeout dropped agents
    // behind slow links and on saturated machines.
    "grpc.http2.min_ping_interval_without_data_ms": limits.minAgentPingIntervalMs,
    "grpc-node.max_session_memory": limits.maxSessionMemoryMb,
  });

  const tls = options.tls;
  const mutualTls = tls?.files.current.ca !== undefined;
  const credentials = tls
    ? new ReloadingServerCredentials(tls.files)
    : grpc.ServerCredentials.createInsecure();

  /**
   * Checks the client certificate (mTLS) and the bearer token from metadata; ends the call with
   * UNAUTHENTICATED when either fails. Returns the agent token's principal when both pass.
   */
  /** The token each session's control stream presented, to check again after a reload. */
  const sessionTokens = new WeakMap<AgentSession, string>();
  const authorize = (call: ControlStream | CallStream): Principal | undefined => {
    if (mutualTls && !call.getAuthContext().sslPeerCertificate) {
      const details =
        "the agent port requires a client certificate signed by its client CA " +
        "(VOXGATE_AGENT_CLIENT_CA_FILE); this connection presented none or an untrusted one: " +
        "pass --client-cert-file and --client-key-file to the agent";
      log.warn({ peer: call.getPeer(), reason: details }, "agent refused");
      call.emit("error", { code: grpc.status.UNAUTHENTICATED, details });
      return undefined;
    }
    const token = parseBearer(String(call.metadata.get("authorization")[0] ?? ""));
    const principal = options.tokens.verify(token);
    if (principal?.scopes.has("agent")) return principal;
    const details = principal
      ? `token "${principal.name}" has no agent scope; the agent port takes agent tokens only`
      : token
        ? "invalid agent token"
        : "missing agent token: pass --token or set VOXGATE_AGENT_TOKEN";
    log.warn({ peer: call.getPeer(), reason: details }, "agent refused");
    call.emit("error", { code: grpc.status.UNAUTHENTICATED, details });
    return undefined;
  };

  let draining = false;
  let boundPort = 0;
  let listenerClosed = false;
  const closeListener = () => {
    if (listenerClosed || boundPort === 0) return;
    listenerClosed = true;
    stopListening(server, log);
  };
  const handlers = {
    connect(control: ControlStream) {
      const principal = authorize(control);
      if (!principal) return;
      if (draining) {
        // A connection made before the listener closed: this gateway takes no new sessions.
        control.emit("error", {
          code: grpc.status.UNAVAILABLE,
          details: "gateway is shutting down: dial the next one",
        });
        return;
      }
      const session = new AgentSession({
        control,
        peer: control.getPeer(),
        registry: options.registry,
        broker,
        log,
        heartbeatIntervalMs: limits.heartbeatIntervalMs,
        heartbeatMissLimit: limits.heartbeatMissLimit,
        connectionHealth: () => liveness.health(control.getPeer()),
        connectionSilenceLimitMs: limits.keepaliveTimeMs + limits.keepaliveTimeoutMs,
        helloTimeoutMs: limits.helloTimeoutMs,
        maxStandbyStreams: limits.maxStandbyStreams,
        helloLimits: {
          maxSlots: limits.maxAgentSlots,
          ...agentPriorityRange(principal, limits),
          maxVoices: limits.maxAgentVoices,
        },
        ...(options.promptSource ? { promptSource: options.promptSource } : {}),
        ...(options.onPromptDelivery ? { onPromptDelivery: options.onPromptDelivery } : {}),
        // Prompts travel in pieces well under the message limit: 50 MB never needs a bigger one.
        promptChunkBytes: Math.max(1024, Math.min(256 * 1024, limits.maxMessageBytes - 4 * 1024)),
        ...(tls?.requireAgentIdentity
          ? { checkAgentId: (agentId: string) => identityMismatch(control, agentId) }
          : {}),
      });
      sessions.set(session.id, session);
      sessionTokens.set(
        session,
        parseBearer(String(control.metadata.get("authorization")[0] ?? "")) ?? "",
      );
      void session.run().finally(() => sessions.delete(session.id));
    },
    call(stream: CallStream) {
      if (!authorize(stream)) return;
      void acceptCallStream(stream);
    },
  };

  const acceptCallStream = async (stream: CallStream) => {
    const session = sessions.get(String(stream.metadata.get(kSessionMetadata)[0] ?? ""));
    const messages = (stream as AsyncIterable<CallRequest>)[Symbol.asyncIterator]();
    const refuse = (details: string, code = grpc.status.FAILED_PRECONDITION) => {
      log.warn({ peer: stream.getPeer(), reason: details }, "call stream refused");
      stream.emit("error", { code, details });
    };
    if (!session) return refuse("unknown or closed session");
    if (tls?.requireAgentIdentity) {
      const mismatch = identityMismatch(stream, session.agentId);
      if (mismatch) return refuse(mismatch, grpc.status.PERMISSION_DENIED);
    }
    let first: IteratorResult<CallRequest>;
    try {
      first = await messages.next();
    } catch {
      return; // the agent went away before saying which call this is
    }
    if (first.done) return;
    const { kind } = first.value;
    if (kind.case === "standby") {
      if (!session.addStandby({ stream, messages })) {
        refuse(
          `the session is not taking calls or holds ${limits.maxStandbyStreams} standby streams ` +
            "already (max standby streams: VOXGATE_AGENT_MAX_STANDBY_STREAMS)",
          grpc.status.RESOURCE_EXHAUSTED,
        );
      }
      return;
    }
    if (kind.case !== "accept") return refuse("a call stream must start with accept or standby");
    if (!session.acceptCall(kind.value.callId, { stream, messages })) {
      refuse("no such call is waiting for this session (expired or not yours)");
    }
  };

  server.addService(createGrpcServiceDefinition(AgentService), handlers);
  const health = new HealthImplementation({ "": "SERVING", "voxgate.v1.AgentService": "SERVING" });
  health.addToServer(server);

  let closing: Promise<void> | undefined;
  return {
    get sessions() {
      return new Set(sessions.values());
    },
    recheckTokens() {
      let ended = 0;
      for (const session of sessions.values()) {
        const principal = options.tokens.verify(sessionTokens.get(session));
        if (principal?.scopes.has("agent")) continue;
        const reason = principal
          ? `agent token "${principal.name}" no longer has the agent scope`
          : "agent token revoked";
        log.warn({ agent: session.agentId, reason }, "ending agent session");
        session.shutdown(reason, Code.PermissionDenied, true);
        ended++;
      }
      return ended;
    },
    listen() {
      return new Promise((resolve, reject) => {
        server.bindAsync(`${options.host}:${options.port}`, credentials, (err, port) => {
          if (err) return reject(err);
          boundPort = port;
          widenReceiveWindows(server, limits.windowBytes, log);
          guardConnections(server, limits, log);
          watchConnections(server, liveness, log);
          if (mutualTls) logUntrustedClients(server, log);
          log.info(
            {
              host: options.host,
              port,
              tls: tls ? (mutualTls ? "mtls" : "tls") : "off",
              ...(tls ? { fingerprint256: tls.files.current.fingerprint256 } : {}),
            },
            "agent port listening",
          );
          resolve(port);
        });
      });
    },
    closeListener,
    drain(reason) {
      if (draining) return;
      draining = true;
      health.setStatus("", "NOT_SERVING");
      health.setStatus("voxgate.v1.AgentService", "NOT_SERVING");
      for (const session of sessions.values()) session.leave(reason);
      closeListener();
      log.info({ reason, sessions: sessions.size }, "agent port draining: agents told to go");
    },
    close(graceMs = 2000) {
      closing ??= new Promise<void>((resolve) => {
        draining = true;
        health.setStatus("", "NOT_SERVING");
        for (const session of sessions.values()) session.shutdown("gateway shutting down");
        const force = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          if (credentials instanceof ReloadingServerCredentials) credentials.dispose();
          liveness.close();
          resolve();
        });
      });
      return closing;
    },
  };
}

/**
 * Why a call's client certificate does not vouch for `agentId`, or undefined when it does. The
 * message lists the names the certificate does carry, so an operator sees the mismatch at once.
 */
function identityMismatch(call: ControlStream | CallStream, agentId: string): string | undefined {
  const cert = call.getAuthContext().sslPeerCertificate;
  const names = cert ? certificateIdentities(cert) : [];
  if (names.includes(agentId)) return undefined;
  return (
    `client certificate names ${names.length ? names.map((n) => `"${n}"`).join(", ") : "nothing"}, ` +
    `not agent id "${agentId}" (VOXGATE_AGENT_CERT_MATCH_ID requires the certificate's CN or a SAN to be the agent id)`
  );
}

/**
 * Logs each TLS connection whose client certificate is missing or untrusted, with the TLS
 * library's reason (expired, unknown issuer): its calls are refused later with a generic message.
 */
function logUntrustedClients(server: grpc.Server, log: Logger): void {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) return;
  for (const http2Server of servers.keys() as Iterable<http2.Http2SecureServer>) {
    http2Server.on("secureConnection", (socket: TLSSocket) => {
      if (socket.authorized) return;
      log.warn(
        {
          peer: `${socket.remoteAddress}:${socket.remotePort}`,
          reason: String(socket.authorizationError ?? "no client certificate"),
        },
        "agent connection without a trusted client certificate",
      );
    });
  }
}

/**
 * Caps the agent port's connections (in all and per address) and closes connections that never
 * open a stream or sit without one, like the public port does: the agent port faces the internet
 * too, and before this a connection flood or preface-only connections held it without limit.
 * Reaches grpc-js's private `http2Servers` map like {@link widenReceiveWindows}; if a grpc-js
 * upgrade moves it, a warning says the caps are off.
 */
function guardConnections(server: grpc.Server, limits: AgentPortLimits, log: Logger): void {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) {
    log.warn("grpc-js internals changed: agent port connections are not capped");
    return;
  }
  for (const http2Server of servers.keys() as Iterable<http2.Http2Server>) {
    attachConnectionBudget(http2Server, {
      maxConnections: limits.maxConnections,
      maxConnectionsPerClient: limits.maxConnectionsPerClient,
      log,
      settingNames: {
        maxConnections: "VOXGATE_AGENT_MAX_CONNECTIONS",
        maxConnectionsPerClient: "VOXGATE_AGENT_MAX_CONNECTIONS_PER_CLIENT",
      },
    });
    attachH2SessionGuard(http2Server, {
      firstStreamTimeoutMs: limits.firstStreamTimeoutMs,
      idleTimeoutMs: limits.idleTimeoutMs,
      log,
      settingNames: {
        firstStreamTimeoutMs: "VOXGATE_AGENT_FIRST_STREAM_TIMEOUT_MS",
        idleTimeoutMs: "VOXGATE_AGENT_IDLE_TIMEOUT_MS",
      },
    });
  }
}

/**
 * Closes the agent port's listeners (the port is free for the next gateway) and nothing else.
 * grpc-js's `unbind` (and Node's `Http2Server.close`) also send every connection a GOAWAY, after
 * which Node cancels the server's keepalive pings and grpc-js destroys the connection at the next
 * one, cutting the calls still running on it. Agents close their connections themselves once
 * their calls end. Reaches grpc-js's private `http2Servers` map, as {@link widenReceiveWindows}
 * does; if it moved, the port stays bound until the gateway closes (and a warning says so).
 */
function stopListening(server: grpc.Server, log: Logger): void {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) {
    log.warn("grpc-js internals changed: the agent port listens until the gateway closes");
    return;
  }
  for (const http2Server of servers.keys() as Iterable<net.Server>) {
    net.Server.prototype.close.call(http2Server);
  }
}

/**
 * Hands every new agent connection to the liveness watch. grpc-js keeps its HTTP/2 servers in a
 * private map (see {@link widenReceiveWindows}); if an upgrade moves it, agents are watched by
 * their heartbeats alone, and an error says so.
 */
function watchConnections(server: grpc.Server, liveness: ConnectionLiveness, log: Logger): void {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) {
    log.error("grpc-js internals changed: agent connections are not pinged (heartbeats only)");
    return;
  }
  for (const http2Server of servers.keys() as Iterable<http2.Http2Server>) {
    http2Server.on("session", (session: http2.ServerHttp2Session) => liveness.watch(session));
  }
}

/**
 * Widens the receive windows of the agent port's HTTP/2 sessions. grpc-js has no server option for
 * them, so this reaches its private `http2Servers` map (filled by `bindAsync`) and sets the windows
 * on each new session with Node's public API. If a grpc-js upgrade moves that field, the port still
 * works with the default windows, and a warning says so.
 */
function widenReceiveWindows(server: grpc.Server, windowBytes: number, log: Logger): void {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) {
    log.warn("grpc-js internals changed: agent port keeps 64 KiB HTTP/2 windows (slower audio)");
    return;
  }
  for (const http2Server of servers.keys() as Iterable<http2.Http2Server>) {
    http2Server.on("session", (session: http2.ServerHttp2Session) => {
      try {
        session.settings({ initialWindowSize: Math.min(windowBytes, 2 ** 31 - 1) });
        // The connection-level window is not a SETTINGS value; widen it once the session is up.
        session.once("localSettings", () => {
          if (!session.destroyed) session.setLocalWindowSize(windowBytes);
        });
      } catch {
        // The session closed before we got to it.
      }
    });
  }
}

/**
 * The priorities an agent may claim: the token's own range (a token entry's `agentMinPriority` /
 * `agentMaxPriority`) kept inside the gateway-wide one, so one operator can give a trusted GPU
 * pool first pick while a shared token's agents can never outrank it.
 */
function agentPriorityRange(
  principal: Principal,
  limits: Pick<AgentPortLimits, "minAgentPriority" | "maxAgentPriority">,
): { minPriority: number; maxPriority: number } {
  const { min, max } = principal.agentPriority ?? { min: undefined, max: undefined };
  const clamp = (value: number) =>
    Math.min(Math.max(value, limits.minAgentPriority), limits.maxAgentPriority);
  return {
    minPriority: min === undefined ? limits.minAgentPriority : clamp(min),
    maxPriority: max === undefined ? limits.maxAgentPriority : clamp(max),
  };
}
