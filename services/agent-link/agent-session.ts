import { randomUUID } from "node:crypto";
import { create, type DescMethod, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { status as grpcStatus } from "@grpc/grpc-js";
import type { Logger } from "pino";
import {
  type AgentHello,
  CallResponseSchema,
  type ConnectRequest,
  ConnectResponseSchema,
} from "../../gen/voxgate/v1/agent_pb.js";
import { BackendKind } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { GPUBackendService } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { gatewaySettings } from "../gateway/gateway-settings.js";
import type { BackendRegistry } from "../registry/index.js";
import { currentTraceCarrier } from "../tracing/spans.js";
import {
  type AgentHelloLimits,
  checkAgentHello,
  defaultAgentHelloLimits,
} from "./agent-hello-check.js";
import type { AcceptedCall, CallStream, ControlStream } from "./agent-streams.js";
import { type AgentTransportOptions, createAgentTransport } from "./agent-transport.js";
import type { CallBroker } from "./call-broker.js";
import type { ConnectionHealth, createConnectionLiveness } from "./connection-liveness.js";
import type { PromptSource } from "./prompt-source.js";

/**
 * Life of an agent session:
 * - `awaiting-hello`: stream open, nothing routed to it;
 * - `ready`: registered (the registry holds it PENDING until its first heartbeat or probe, then
 *   READY), takes work;
 * - `draining`: registered, takes no new work, running calls finish;
 * - `closed`: removed from the registry; terminal.
 */
export type AgentSessionState = "awaiting-hello" | "ready" | "draining" | "closed";

/** Options of {@link AgentSession}. */
export interface AgentSessionOptions {
  /** The control stream the agent opened. */
  control: ControlStream;
  /** Peer address, for admin views. */
  peer: string;
  /** Registry to join. */
  registry: BackendRegistry;
  /** Matches offers with the call streams the agent opens. */
  broker: CallBroker;
  /** Parent logger. */
  log: Logger;
  /** Interval the agent must send heartbeats at, in ms. */
  heartbeatIntervalMs: number;
  /**
   * Heartbeat intervals (plus twice the connection's round trip) that may pass with neither a
   * heartbeat nor a byte on the agent's connection before the agent is dropped.
   */
  heartbeatMissLimit: number;
  /**
   * The liveness of the agent's connection (see {@link createConnectionLiveness}): bytes on it
   * count as signs of life (a busy agent whose control stream waits behind its audio is alive),
   * and its round trip widens the silence limit. Absent: heartbeats alone.
   */
  connectionHealth?: () => ConnectionHealth | undefined;
  /**
   * Least silence after which the agent's connection is closed, before the round trip is added,
   * in ms; announced in the welcome when lower than the heartbeat limit (the agent skips a beat
   * that comes later than that, reading the link first).
   */
  connectionSilenceLimitMs?: number;
  /** Time the agent has to say hello, in ms. */
  helloTimeoutMs: number;
  /** Where clone prompts the agent asks for are read; absent: such asks fail. */
  promptSource?: PromptSource;
  /** Largest prompt_chunk payload, in bytes. */
  promptChunkBytes?: number;
  /** Observes clone prompt hits and deliveries of this agent's calls (metrics). */
  onPromptDelivery?: AgentTransportOptions["onPromptDelivery"];
  /** Standby call streams the session holds at most. @default setting agentMaxStandbyStreams */
  maxStandbyStreams?: number;
  /** What the agent may claim in its hello. @default {@link defaultAgentHelloLimits} */
  helloLimits?: AgentHelloLimits;
  /**
   * Checks the agent id of the hello against the connection (its client certificate): returns why
   * it is refused (the session ends with PERMISSION_DENIED) or undefined to accept it.
   */
  checkAgentId?: (agentId: string) => string | undefined;
}

const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const DIGEST = /^[0-9a-f]{64}$/;
/** Most prompt digests a session remembers for routing (agents list at most 1000 in hello). */
const MAX_PROMPT_HINTS = 10_000;

/**
 * One agent's control stream on the gateway: registers the agent on hello, watches its
 * heartbeats, offers it calls, and removes it from the registry the moment the stream ends or
 * heartbeats stop.
 */
export class AgentSession {
  /** Session id, sent to the agent in the welcome; call streams must present it. */
  readonly id = randomUUID();
  #state: AgentSessionState = "awaiting-hello";
  #agentId = "";
  /** When the agent was last heard, on the monotonic clock (a wall-clock step moves nothing). */
  #lastHeardAt = performance.now();
  #heard = false;
  /** Longest gap between two heartbeats, in ms (logged at the end: the margin of the limit). */
  #maxHeartbeatGapMs = 0;
  #watchdog: NodeJS.Timeout | undefined;
  #activeCalls = new Set<CallStream>();
  /** Call streams the agent opened in advance, oldest first; a call starts on one with an offer. */
  readonly #standby = new Set<AcceptedCall>();
  /** Prompts the agent holds: its hello's list plus those sent to it since. */
  readonly #promptDigests = new Set<string>();
  #log: Logger;
  #closed: Promise<void>;
  #resolveClosed!: () => void;
  readonly #options: AgentSessionOptions;
  readonly #client;

  constructor(options: AgentSessionOptions) {
    this.#options = options;
    // The agent port's logger already names the component; a session adds its own ids only
    // (a second `component` key would make every line carry the key twice).
    this.#log = options.log.child({
      session: this.id,
      peer: options.peer,
    });
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    const session = this;
    this.#client = createClient(
      GPUBackendService,
      createAgentTransport(
        {
          get agentId() {
            return session.#agentId;
          },
          open: (method, timeoutMs, requestId, signal) =>
            session.#open(method, timeoutMs, requestId, signal),
          cancel: (callId, reason) =>
            session.#send({ kind: { case: "cancel", value: { callId, reason } } }),
          linkDelayMs: () => 2 * (options.connectionHealth?.()?.rttMs ?? 0),
        },
        {
          ...(options.promptSource ? { promptSource: options.promptSource } : {}),
          ...(options.promptChunkBytes ? { promptChunkBytes: options.promptChunkBytes } : {}),
          get log() {
            return session.#log;
          },
          onPromptDelivered: (digest) => session.#notePrompt(digest),
          ...(options.onPromptDelivery ? { onPromptDelivery: options.onPromptDelivery } : {}),
        },
      ),
    );
  }

  /** Current state. */
  get state(): AgentSessionState {
    return this.#state;
  }

  /** The agent's id once it said hello, else empty. */
  get agentId(): string {
    return this.#agentId;
  }

  /** Reads the control stream until it ends; resolves when the session is closed. */
  async run(): Promise<void> {
    const { control, helloTimeoutMs } = this.#options;
    const helloTimer = setTimeout(
      () => this.shutdown(`no hello within ${helloTimeoutMs} ms`, Code.DeadlineExceeded),
      helloTimeoutMs,
    );
    // A lost connection ends the calls on it too: grpc-js marks their streams cancelled but
    // their readers may never wake, and a relay stuck there held its caller and its lease.
    control.on("error", (err) =>
      this.shutdown(`control stream error: ${err.message}`, Code.Unavailable, true),
    );
    control.on("cancelled", () => this.shutdown("agent connection lost", Code.Unavailable, true));
    control.on("close", () => this.shutdown("control stream closed"));
    try {
      for await (const message of control as AsyncIterable<ConnectRequest>) {
        if (this.#state === "closed") break;
        this.#onMessage(message);
        if (this.#state !== "awaiting-hello") clearTimeout(helloTimer);
      }
      this.shutdown("agent closed the control stream");
    } catch (err) {
      this.shutdown(`control stream failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      clearTimeout(helloTimer);
    }
    return this.#closed;
  }

  /** Hands an opened call stream to the call waiting for it; false when none is. */
  acceptCall(callId: string, call: AcceptedCall): boolean {
    if (this.#state === "closed") return false;
    const accepted = this.#options.broker.accept(this.id, callId, call);
    if (accepted) {
      this.#activeCalls.add(call.stream);
      call.stream.once("close", () => this.#activeCalls.delete(call.stream));
    }
    return accepted;
  }

  /**
   * Keeps a call stream the agent opened in advance, to start a later call on without an offer
   * round trip; false (refuse it) when the session takes no work or holds its maximum already.
   */
  addStandby(call: AcceptedCall): boolean {
    if (this.#state !== "ready") return false;
    if (
      this.#standby.size >=
      (this.#options.maxStandbyStreams ?? gatewaySettings.agentMaxStandbyStreams.defaultValue)
    )
      return false;
    this.#standby.add(call);
    // A stream the agent cancels (it is draining or leaving) must not be handed a call.
    const forget = () => this.#standby.delete(call);
    call.stream.once("cancelled", forget);
    call.stream.once("close", forget);
    call.stream.once("error", forget);
    return true;
  }

  /**
   * Ends the session: marks the backend UNHEALTHY (with the reason) and removes it, fails calls
   * waiting for streams (the registry's retry loop moves them on) and closes the control
   * stream. Running calls are cancelled only when `cancelRunning` is set (the agent went silent);
   * after a graceful end (a drained agent) their streams finish on their own, and if the
   * connection died grpc-js fails them anyway. Idempotent.
   */
  shutdown(reason: string, code: Code = Code.Unavailable, cancelRunning = false): void {
    if (this.#state === "closed") return;
    const wasRegistered = this.#state !== "awaiting-hello";
    this.#state = "closed";
    clearInterval(this.#watchdog);
    const { registry, broker, control } = this.#options;
    if (wasRegistered && registry.get(this.#agentId)?.client === this.#client) {
      // Unhealthy first, so watchers see why it went, then gone: the session cannot come back.
      registry.signal(this.#agentId, { kind: "lost", error: reason }, reason);
      registry.remove(this.#agentId, reason);
    }
    const error = new ConnectError(
      `agent ${this.#agentId || "(no hello)"}: ${reason}`,
      Code.Unavailable,
    );
    broker.failSession(this.id, error);
    this.#closeStandby();
    if (cancelRunning) {
      for (const call of this.#activeCalls) {
        call.emit("error", { code: grpcStatus.UNAVAILABLE, details: error.message });
      }
    }
    this.#activeCalls.clear();
    if (!control.destroyed && !control.writableEnded) {
      if (code === Code.Unavailable) {
        control.end();
      } else {
        control.emit("error", { code: toGrpcCode(code), details: reason });
      }
    }
    this.#log.info(
      { agent: this.#agentId, reason, maxHeartbeatGapMs: Math.round(this.#maxHeartbeatGapMs) },
      "agent session closed",
    );
    this.#resolveClosed();
  }

  /**
   * Tells the agent this gateway is going away (GatewayLeaving) and ends the session gracefully:
   * the agent takes no new work here and dials again at once, its running calls finish on their
   * own streams. Idempotent.
   */
  leave(reason: string): void {
    if (this.#state === "closed") return;
    this.#send({ kind: { case: "leaving", value: { reason } } });
    this.shutdown(`gateway leaving: ${reason}`);
  }

  #onMessage(message: ConnectRequest): void {
    const { kind } = message;
    if (this.#state === "awaiting-hello") {
      if (kind.case !== "hello") {
        this.shutdown(
          `first message must be hello, got ${kind.case ?? "nothing"}`,
          Code.InvalidArgument,
        );
        return;
      }
      this.#onHello(kind.value);
      return;
    }
    switch (kind.case) {
      case "heartbeat": {
        const now = performance.now();
        if (this.#heard) {
          this.#maxHeartbeatGapMs = Math.max(this.#maxHeartbeatGapMs, now - this.#lastHeardAt);
        }
        this.#lastHeardAt = now;
        // The first heartbeat proves the agent alive: PENDING becomes READY.
        if (this.#isCurrent()) this.#options.registry.heartbeat(this.#agentId, kind.value.load);
        if (!this.#heard) {
          this.#heard = true;
          // Logged once the registry routes to it (a probe may have made it READY already).
          this.#log.info("agent ready");
        }
        break;
      }
      case "draining":
        this.#state = "draining";
        this.#closeStandby();
        if (this.#isCurrent()) {
          this.#options.registry.drain(
            this.#agentId,
            `agent draining: ${kind.value.reason}`,
            "backend",
          );
        }
        break;
      case "hello":
        this.shutdown("hello sent twice", Code.InvalidArgument);
        break;
      default:
        break;
    }
  }

  #onHello(hello: AgentHello): void {
    const { registry, heartbeatIntervalMs, heartbeatMissLimit, peer } = this.#options;
    if (!AGENT_ID.test(hello.agentId)) {
      this.shutdown(
        "agent_id must be 1-64 characters of letters, digits, '.', '_' or '-'",
        Code.InvalidArgument,
      );
      return;
    }
    const refusal = this.#options.checkAgentId?.(hello.agentId);
    if (refusal) {
      this.#log.warn({ agent: hello.agentId, reason: refusal }, "agent refused");
      this.shutdown(refusal, Code.PermissionDenied);
      return;
    }
    // Agents are untrusted: what they claim is held to the operator's limits first.
    const checked = checkAgentHello(hello, this.#options.helloLimits ?? defaultAgentHelloLimits);
    if (!checked.ok) {
      this.shutdown(checked.reason, Code.InvalidArgument);
      return;
    }
    const { capabilities } = checked;
    this.#agentId = hello.agentId;
    this.#log = this.#log.child({ agent: hello.agentId });
    for (const digest of hello.cachedPromptDigests.slice(0, MAX_PROMPT_HINTS)) {
      if (DIGEST.test(digest)) this.#promptDigests.add(digest);
    }
    this.#state = "ready";
    this.#lastHeardAt = performance.now();
    const connectionHealth = this.#options.connectionHealth;
    const silenceLimitMs = () =>
      heartbeatIntervalMs * heartbeatMissLimit + 2 * (connectionHealth?.()?.rttMs ?? 0);
    this.#send({
      kind: {
        case: "welcome",
        value: {
          sessionId: this.id,
          heartbeatIntervalMs,
          backendId: hello.agentId,
          // The earliest the gateway may give up on the agent (the round trip only adds to it).
          silenceLimitMs: Math.min(
            heartbeatIntervalMs * heartbeatMissLimit,
            this.#options.connectionSilenceLimitMs ?? Number.POSITIVE_INFINITY,
          ),
        },
      },
    });
    // A reconnecting agent replaces its stale session (its old stream may not have died yet).
    // It joins PENDING and gets no work until its first heartbeat or a successful probe.
    registry.add(
      {
        id: hello.agentId,
        kind: BackendKind.AGENT,
        client: this.#client,
        capabilities,
        priority: checked.priority,
        version: checked.version,
        address: peer,
        labels: checked.labels,
        promptDigests: this.#promptDigests,
      },
      "agent connected",
    );
    // Checked several times per interval, so the limit is overshot by a fraction of one at most.
    const checkEveryMs = Math.max(10, Math.min(250, Math.floor(heartbeatIntervalMs / 4)));
    let lastCheckAt = performance.now();
    this.#watchdog = setInterval(() => {
      const now = performance.now();
      // Time this gateway's own event loop was stalled (a saturated machine, a GC pause) is not
      // the agent's silence: heartbeats that arrived meanwhile are still unread in the socket.
      const stallMs = now - lastCheckAt - checkEveryMs;
      lastCheckAt = now;
      if (stallMs > 0) this.#lastHeardAt += stallMs;
      const connection = connectionHealth?.();
      const heardAt = Math.max(this.#lastHeardAt, connection?.lastHeardAt ?? 0);
      const silentMs = now - heardAt;
      const limitMs = silenceLimitMs();
      if (silentMs > limitMs) {
        this.shutdown(
          `no heartbeat for ${Math.round(silentMs)} ms (limit ${Math.round(limitMs)} ms)`,
          Code.Unavailable,
          true,
        );
      }
    }, checkEveryMs);
    this.#watchdog.unref();
    if (checked.adjustments.length > 0) {
      this.#log.warn({ adjustments: checked.adjustments }, "agent hello exceeded limits; clamped");
    }
    this.#log.info(
      {
        version: checked.version,
        engines: capabilities.engines.map((e) => e.id),
        slots: capabilities.slots,
      },
      "agent joined",
    );
  }

  /** Records a prompt the agent now holds; the oldest hint goes past the cap (a bounded set). */
  #notePrompt(digest: string): void {
    this.#promptDigests.delete(digest);
    if (this.#promptDigests.size >= MAX_PROMPT_HINTS) {
      const oldest = this.#promptDigests.values().next().value;
      if (oldest !== undefined) this.#promptDigests.delete(oldest);
    }
    this.#promptDigests.add(digest);
  }

  /** Whether the registry entry under this agent's id is this session's (not a newer one's). */
  #isCurrent(): boolean {
    return this.#options.registry.get(this.#agentId)?.client === this.#client;
  }

  async #open(
    method: DescMethod,
    timeoutMs: number | undefined,
    requestId: string,
    signal: AbortSignal,
  ): Promise<AcceptedCall & { callId: string }> {
    if (this.#state !== "ready") {
      throw new ConnectError(`agent ${this.#agentId} is ${this.#state}`, Code.Unavailable);
    }
    const callId = randomUUID();
    const offer = {
      callId,
      method: `/${method.parent.typeName}/${method.name}`,
      timeoutMs: BigInt(timeoutMs ?? 0),
      requestId,
      // The routing attempt's span (empty when not tracing): the agent continues the trace.
      ...currentTraceCarrier(),
    };
    const standby = this.#takeStandby();
    if (standby) {
      // The stream is already open: the offer travels on it, ahead of the requests.
      standby.stream.write(create(CallResponseSchema, { kind: { case: "offer", value: offer } }));
      return { callId, ...standby };
    }
    const accepted = this.#options.broker.expect(this.id, callId, signal);
    this.#send({ kind: { case: "offer", value: offer } });
    return { callId, ...(await accepted) };
  }

  /** The oldest live standby stream, now counted as a running call; undefined when none. */
  #takeStandby(): AcceptedCall | undefined {
    for (const call of this.#standby) {
      this.#standby.delete(call);
      if (call.stream.cancelled || call.stream.destroyed || call.stream.writableEnded) continue;
      this.#activeCalls.add(call.stream);
      call.stream.once("close", () => this.#activeCalls.delete(call.stream));
      return call;
    }
    return undefined;
  }

  /** Ends every standby stream (no call will start on them): the agent sees them close cleanly. */
  #closeStandby(): void {
    for (const call of this.#standby) {
      if (!call.stream.writableEnded && !call.stream.destroyed) call.stream.end();
    }
    this.#standby.clear();
  }

  #send(message: MessageInitShape<typeof ConnectResponseSchema>): void {
    const { control } = this.#options;
    // Control messages are small and rare; grpc-js buffers them, so no backpressure wait here.
    if (!control.destroyed && !control.writableEnded)
      control.write(create(ConnectResponseSchema, message));
  }
}

function toGrpcCode(code: Code): number {
  // Connect codes equal gRPC status codes by definition.
  return code as number;
}
