import { setTimeout as sleep } from "node:timers/promises";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import {
  AgentService,
  CallRequestSchema,
  type CallResponse,
  type ConnectRequest,
  ConnectRequestSchema,
  type ConnectResponse,
  type WorkOffer,
} from "../../gen/voxgate/v1/agent_pb.js";
import type { Capabilities } from "../../gen/voxgate/v1/capabilities_pb.js";
import { GPUBackendService } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { kSessionMetadata } from "../agent-link/agent-port-server.js";
import type { EngineHost } from "../engine-host/index.js";
import { cancelStream } from "../grpc/cancel-stream.js";
import { createGrpcServiceDefinition } from "../grpc/service-definition.js";
import {
  type ClientTlsOptions,
  createClientChannelCredentials,
  type ServerCertificateSeen,
} from "../tls/grpc-channel-credentials.js";
import { createAudioCoalescer } from "./audio-coalescer.js";
import {
  type BackoffOptions,
  backoffDelayMs,
  defaultBackoff,
  kReplacementRedialWindowMs,
  replacementRedialDelayMs,
} from "./backoff.js";
import {
  type AgentCallStream,
  type CallDispatcher,
  createCallDispatcher,
} from "./call-dispatcher.js";
import { type GatewayTarget, parseGatewayAddress } from "./gateway-address.js";
import type { PromptCache } from "./prompt-cache.js";

/**
 * Most digests an agent lists in its hello (most recently used first): enough to steer routing,
 * small enough (about 66 KB) for one control message.
 */
export const kMaxHelloPromptDigests = 1000;

/** Most audio bytes merged into one Synthesize response while the link is busy. */
export const kMaxCoalescedAudioBytes = 256 * 1024;

/**
 * Life of an agent:
 * - `idle`: created, `run()` not called;
 * - `connecting`: dialling the gateway, hello sent, no welcome yet;
 * - `connected`: welcomed, taking work;
 * - `backoff`: lost the gateway, waiting to redial;
 * - `draining`: takes no new work, finishing running calls;
 * - `stopped`: terminal.
 */
export type AgentState = "idle" | "connecting" | "connected" | "backoff" | "draining" | "stopped";

/** The agent settings of its link to the gateway, by setting name (README: Settings). */
export interface AgentLinkSettings {
  /** Routing priority. */
  priority: number;
  /** Call streams kept open in advance. */
  standbyStreams: number;
  /** Longest wait for running calls when draining, in ms. */
  drainTimeoutMs: number;
  /** Interval of keepalive pings, in ms. */
  gatewayKeepaliveMs: number;
  /** Time the gateway has to answer a ping, in ms. */
  gatewayKeepaliveTimeoutMs: number;
  /** Largest message either way, in bytes. */
  gatewayMaxMessageBytes: number;
}

/** The link options of {@link AgentOptions} from the settings of the same meaning. */
export function agentLinkOptionsFromSettings(
  settings: AgentLinkSettings,
): Pick<
  AgentOptions,
  | "priority"
  | "standbyStreams"
  | "drainTimeoutMs"
  | "keepaliveTimeMs"
  | "keepaliveTimeoutMs"
  | "maxMessageBytes"
> {
  return {
    priority: settings.priority,
    standbyStreams: settings.standbyStreams,
    drainTimeoutMs: settings.drainTimeoutMs,
    keepaliveTimeMs: settings.gatewayKeepaliveMs,
    keepaliveTimeoutMs: settings.gatewayKeepaliveTimeoutMs,
    maxMessageBytes: settings.gatewayMaxMessageBytes,
  };
}

/** Options of {@link Agent}. */
export interface AgentOptions {
  /**
   * Gateway agent port: `https://HOST:PORT` dials TLS; `http://HOST:PORT` or `HOST:PORT` dial
   * cleartext (see {@link parseGatewayAddress}).
   */
  gatewayAddress: string;
  /**
   * Trust and client certificate of an `https://` gateway; files are read again for every new
   * link, so rotated files take effect on the next reconnect.
   */
  tls?: ClientTlsOptions;
  /**
   * Name the gateway's certificate must be valid for, when the address is an IP (a fleet dials each
   * replica behind one name by its IP). @default the address's host
   */
  tlsServerName?: string;
  /** Agent token (scope `agent`). */
  token: string;
  /** Stable id of this agent. */
  agentId: string;
  /** Software version reported in hello. */
  version: string;
  /** Routing priority; lower is preferred (setting priority). */
  priority: number;
  /** Labels shown by admin APIs. */
  labels?: Record<string, string>;
  /** The engines this agent serves, behind the GPUBackendService contract. */
  host: EngineHost;
  /** Capabilities announced in hello. */
  capabilities: Capabilities;
  /** Reconnect backoff. */
  backoff?: Partial<BackoffOptions>;
  /** Interval of HTTP/2 keepalive pings to the gateway, in ms (setting gatewayKeepaliveMs). */
  keepaliveTimeMs: number;
  /** Time the gateway has to answer a ping, in ms (setting gatewayKeepaliveTimeoutMs). */
  keepaliveTimeoutMs: number;
  /** Largest message either way, in bytes (setting gatewayMaxMessageBytes). */
  maxMessageBytes: number;
  /**
   * Call streams kept open in advance: the gateway starts a call on one without a work offer round
   * trip, and the agent opens a replacement. 0 turns them off (every call is offered on the
   * control stream) (setting standbyStreams).
   */
  standbyStreams: number;
  /** Longest wait for running calls when draining, in ms (setting drainTimeoutMs). */
  drainTimeoutMs: number;
  /**
   * On-disk cache of clone prompts, opened by {@link Agent.run}; its digests go into the hello.
   * Without one every call with a clone prompt fetches it from the gateway again.
   */
  promptCache?: PromptCache;
  /**
   * grpc-js client interceptors on the link to the gateway (tracing, metrics; tests use one to
   * record every message the agent receives).
   */
  interceptors?: grpc.Interceptor[];
  /** Logger. */
  log: Logger;
}

type AgentClient = grpc.Client & {
  connect(metadata: grpc.Metadata): grpc.ClientDuplexStream<ConnectRequest, ConnectResponse>;
  call(metadata: grpc.Metadata): AgentCallStream;
};

const AgentClientConstructor = grpc.makeGenericClientConstructor(
  createGrpcServiceDefinition(AgentService),
  "AgentService",
) as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ClientOptions,
) => AgentClient;

/**
 * A GPU host's link to a gateway: dials out, says hello, heartbeats its load, takes work offers
 * (one call stream per call) and reconnects with capped exponential backoff and jitter.
 */
export class Agent {
  #state: AgentState = "idle";
  readonly #options: AgentOptions;
  readonly #log: Logger;
  readonly #dispatcher: CallDispatcher;
  readonly #backoff: BackoffOptions;
  /** Calls running now, each with the link (client) its stream travels on. */
  readonly #running = new Map<
    string,
    { done: Promise<void>; abort: AbortController; client: AgentClient | undefined }
  >();
  /** Standby call streams open now, waiting for the gateway to start a call on them. */
  readonly #standby = new Set<AgentCallStream>();
  #standbyRetry: NodeJS.Timeout | undefined;
  /** Standby streams the current gateway session accepts (lowered when it refuses one). */
  #standbyLimit = Number.POSITIVE_INFINITY;
  readonly #stopSignal = new AbortController();
  #client: AgentClient | undefined;
  #control: grpc.ClientDuplexStream<ConnectRequest, ConnectResponse> | undefined;
  /** The current control stream has its final status (the gateway ended or reset it). */
  #controlEnded = false;
  #sessionId = "";
  #heartbeat: NodeJS.Timeout | undefined;
  #sequence = 0n;
  #draining: Promise<void> | undefined;
  /** The gateway said it is leaving: the next dial goes out without a backoff delay. */
  #redialNow = false;
  /**
   * When the last gateway said it is leaving (monotonic ms), while its replacement has not
   * welcomed us yet: dials then go out at a short pace, not with the backoff.
   */
  #leftAt: number | undefined;
  #runDone: Promise<void> | undefined;
  readonly #target: GatewayTarget;
  /** The gateway certificate of the current link's handshake (TLS only), for logs. */
  #serverCertificate: ServerCertificateSeen | undefined;

  /** @throws Error for a gateway address in none of the accepted forms. */
  constructor(options: AgentOptions) {
    this.#options = options;
    this.#target = parseGatewayAddress(options.gatewayAddress);
    this.#log = options.log.child({ component: "agent", agent: options.agentId });
    const { maxMessageBytes } = options;
    this.#dispatcher = createCallDispatcher(GPUBackendService, options.host.handler, {
      ...(options.promptCache ? { promptCache: options.promptCache } : {}),
      coalescers: {
        // Audio the gateway cannot take yet travels in fewer, bigger messages (well below the
        // link's message limit): less per-message work on both ends when the link is the limit.
        [`/${GPUBackendService.typeName}/${GPUBackendService.method.synthesize.name}`]: () =>
          createAudioCoalescer(Math.min(kMaxCoalescedAudioBytes, maxMessageBytes / 4)),
      },
    });
    this.#backoff = { ...defaultBackoff, ...options.backoff };
  }

  /** Current state. */
  get state(): AgentState {
    return this.#state;
  }

  /** Calls running now. */
  get inFlight(): number {
    return this.#running.size;
  }

  /** Connects and serves until {@link shutdown} (or a finished drain); reconnects on loss. */
  run(): Promise<void> {
    this.#runDone ??= this.#loop();
    return this.#runDone;
  }

  /**
   * Stops taking work: tells the gateway, waits for running calls (at most `drainTimeoutMs`),
   * then shuts down. Idempotent.
   */
  drain(reason: string): Promise<void> {
    this.#draining ??= (async () => {
      if (this.#state === "stopped") return;
      this.#state = "draining";
      this.#options.host.drain();
      this.#log.info({ reason, inFlight: this.#running.size }, "draining");
      this.#send({ kind: { case: "draining", value: { reason } } });
      this.#cancelStandby();
      const limitMs = this.#options.drainTimeoutMs;
      const finished = Promise.all([...this.#running.values()].map((r) => r.done));
      const timedOut = sleep(limitMs, "timeout", { ref: false });
      if ((await Promise.race([finished, timedOut])) === "timeout") {
        this.#log.warn({ inFlight: this.#running.size, limitMs }, "drain timed out; cancelling");
      }
      await this.shutdown();
    })();
    return this.#draining;
  }

  /** Cancels running calls, closes the link and ends {@link run}. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    this.#stopSignal.abort(new Error("agent stopped"));
    // UNAVAILABLE, not CANCELED: the caller did not give up, this backend went away.
    const stopped = new ConnectError("agent stopped before the call finished", Code.Unavailable);
    for (const call of this.#running.values()) call.abort.abort(stopped);
    await Promise.all([...this.#running.values()].map((r) => r.done));
    // Prompt files still being written finish, so a stopped agent leaves no half-written temp file.
    await this.#options.promptCache?.idle();
    this.#closeLink();
    this.#log.info("stopped");
  }

  async #loop(): Promise<void> {
    // Before the first hello, so it can list what survived a restart.
    await this.#options.promptCache?.open();
    let attempt = 0;
    while (!this.#stopping()) {
      const welcomed = await this.#session();
      if (welcomed) attempt = 0;
      if (this.#stopping()) break;
      if (this.#redialNow) {
        // Told to go, not lost: the gateway behind this address may already be the next one.
        this.#redialNow = false;
        this.#leftAt = performance.now();
        continue;
      }
      if (welcomed) this.#leftAt = undefined;
      this.#state = "backoff";
      if (this.#awaitingReplacement()) {
        // A restart: the replacement's agent port opens any moment now.
        const delayMs = replacementRedialDelayMs();
        this.#log.debug({ delayMs }, "waiting for the gateway's replacement");
        await sleep(delayMs, undefined, { signal: this.#stopSignal.signal }).catch(() => {});
        continue;
      }
      this.#leftAt = undefined;
      const delayMs = backoffDelayMs(attempt++, this.#backoff);
      this.#log.info({ delayMs, attempt }, "reconnecting after delay");
      await sleep(delayMs, undefined, { signal: this.#stopSignal.signal }).catch(() => {});
    }
    // A drain in progress finishes the shutdown itself.
    await this.#draining;
  }

  /** Whether a gateway said it is leaving within {@link kReplacementRedialWindowMs}. */
  #awaitingReplacement(): boolean {
    return (
      this.#leftAt !== undefined && performance.now() - this.#leftAt < kReplacementRedialWindowMs
    );
  }

  #stopping(): boolean {
    return this.#state === "stopped" || this.#state === "draining";
  }

  /** One control-stream session; resolves when it ends, with whether it was welcomed. */
  #session(): Promise<boolean> {
    const o = this.#options;
    this.#state = "connecting";
    const { maxMessageBytes } = o;
    // A fresh channel per session, so our backoff (not grpc-js's own) paces reconnects.
    let credentials: grpc.ChannelCredentials;
    this.#serverCertificate = undefined;
    try {
      credentials = this.#target.tls
        ? createClientChannelCredentials(o.tls ?? {}, (seen) => {
            this.#serverCertificate = seen;
          })
        : grpc.credentials.createInsecure();
    } catch (err) {
      // A client certificate file mid-rotation: try again after the backoff.
      this.#log.error({ err }, "cannot set up TLS to the gateway");
      return Promise.resolve(false);
    }
    const client = new AgentClientConstructor(this.#target.address, credentials, {
      "grpc.keepalive_time_ms": o.keepaliveTimeMs,
      "grpc.keepalive_timeout_ms": o.keepaliveTimeoutMs,
      "grpc.keepalive_permit_without_calls": 1,
      ...(o.tlsServerName
        ? {
            "grpc.ssl_target_name_override": o.tlsServerName,
            "grpc.default_authority": o.tlsServerName,
          }
        : {}),
      "grpc.max_receive_message_length": maxMessageBytes,
      "grpc.max_send_message_length": maxMessageBytes,
      // Receive windows for what the gateway sends (requests, prompt bytes): 64 KiB by default.
      "grpc-node.flow_control_window": 8 * 1024 * 1024,
      ...(o.interceptors ? { interceptors: o.interceptors } : {}),
    });
    this.#client = client;
    const control = client.connect(this.#metadata());
    this.#control = control;
    this.#controlEnded = false;
    // Once the call has its status the gateway is done with it: nothing more may be written.
    control.once("status", () => {
      if (this.#control === control) this.#controlEnded = true;
    });
    let welcomed = false;
    return new Promise<boolean>((resolve) => {
      let ended = false;
      const end = (why: string) => {
        // A failed stream emits both "error" and "end": one loss, one log line.
        if (ended) return;
        ended = true;
        clearInterval(this.#heartbeat);
        if (this.#control === control) this.#closeLink();
        if (this.#state !== "stopped" && this.#state !== "draining" && !this.#redialNow) {
          // Refused dials while a restart's replacement starts are expected: not a warning.
          const expected = !welcomed && this.#awaitingReplacement();
          this.#log[expected ? "debug" : "warn"](
            { reason: why },
            welcomed ? "lost the gateway" : "could not join the gateway",
          );
        }
        resolve(welcomed);
      };
      control.on("data", (message: ConnectResponse) => {
        const { kind } = message;
        switch (kind.case) {
          case "welcome":
            welcomed = true;
            this.#sessionId = kind.value.sessionId;
            if (this.#state === "connecting") this.#state = "connected";
            this.#startHeartbeats(kind.value.heartbeatIntervalMs, kind.value.silenceLimitMs);
            this.#standbyLimit = Number.POSITIVE_INFINITY;
            this.#fillStandby();
            this.#log.info(
              {
                session: this.#sessionId,
                gateway: o.gatewayAddress,
                tls: this.#target.tls,
                ...(this.#serverCertificate ? { gatewayCertificate: this.#serverCertificate } : {}),
              },
              "connected to gateway",
            );
            break;
          case "offer":
            this.#take(kind.value);
            break;
          case "cancel":
            this.#running.get(kind.value.callId)?.abort.abort(new Error(kind.value.reason));
            break;
          case "drain":
            void this.drain(`gateway asked: ${kind.value.reason}`);
            break;
          case "leaving":
            // The gateway is restarting or scaling down: this session takes no more work, its
            // running calls finish on their own streams, and the next gateway behind this
            // address is dialled without waiting.
            this.#log.info(
              { reason: kind.value.reason, inFlight: this.#running.size },
              "gateway is leaving; dialling again at once",
            );
            this.#redialNow = true;
            end(`gateway leaving: ${kind.value.reason}`);
            break;
          default:
            break;
        }
      });
      control.on("error", (err: grpc.ServiceError) => {
        // The link failed (not a graceful end): calls on it cannot finish, and a stream whose
        // writes are stuck on the dead connection would hold its slot until grpc-js notices.
        // After the session ended on purpose (the gateway is leaving) closing the control stream
        // ends it with CANCELLED: its calls are fine and finish.
        if (!ended) {
          const lost = new ConnectError(
            `lost the gateway: ${err.details || err.message}`,
            Code.Unavailable,
          );
          for (const call of this.#running.values()) {
            if (call.client === client) call.abort.abort(lost);
          }
        }
        end(err.details || err.message);
      });
      control.on("end", () => end("gateway ended the control stream"));
      this.#send({
        kind: {
          case: "hello",
          value: {
            agentId: o.agentId,
            version: o.version,
            capabilities: o.capabilities,
            priority: o.priority,
            labels: o.labels ?? {},
            cachedPromptDigests: o.promptCache?.digests(kMaxHelloPromptDigests) ?? [],
          },
        },
      });
    });
  }

  #take(offer: WorkOffer): void {
    const client = this.#client;
    if (!client) return;
    const stream = client.call(this.#metadata(true));
    stream.on("error", () => {
      // Surfaced through the dispatcher's reads and writes.
    });
    stream.write(
      create(CallRequestSchema, { kind: { case: "accept", value: { callId: offer.callId } } }),
    );
    this.#serve(offer, stream);
  }

  /** Opens standby call streams up to the configured number while the link takes work. */
  #fillStandby(): void {
    const target = Math.min(this.#options.standbyStreams, this.#standbyLimit);
    while (this.#state === "connected" && this.#client && this.#standby.size < target) {
      this.#openStandby(this.#client);
    }
  }

  /**
   * Opens one standby stream and waits for the gateway to start a call on it. A stream that ends
   * without an offer (the gateway refused it or closed it) is replaced a second later, not at
   * once, so a gateway that takes none is not hammered.
   */
  #openStandby(client: AgentClient): void {
    const stream = client.call(this.#metadata(true));
    stream.on("error", () => {
      // Surfaced through the reader below, or the dispatcher's reads and writes once in use.
    });
    stream.write(create(CallRequestSchema, { kind: { case: "standby", value: {} } }));
    this.#standby.add(stream);
    const messages = (stream as AsyncIterable<CallResponse>)[Symbol.asyncIterator]();
    const unused = (err?: unknown) => {
      this.#standby.delete(stream);
      cancelStream(stream);
      const code = (err as Partial<grpc.StatusObject> | undefined)?.code;
      if (code === grpc.status.RESOURCE_EXHAUSTED) {
        // The gateway holds as many as it allows: keep what it took, stop asking this session.
        this.#standbyLimit = this.#standby.size;
        return;
      }
      if (code === grpc.status.FAILED_PRECONDITION) {
        // A gateway without standby streams (an older version) or one that no longer knows this
        // session: calls keep coming as offers on the control stream, so stop asking.
        this.#standbyLimit = 0;
        return;
      }
      if (this.#state !== "connected" || this.#client !== client || this.#standbyRetry) return;
      this.#standbyRetry = setTimeout(() => {
        this.#standbyRetry = undefined;
        this.#fillStandby();
      }, 1000);
      this.#standbyRetry.unref();
    };
    messages.next().then((first) => {
      if (first.done || first.value.kind.case !== "offer") return unused(undefined);
      this.#standby.delete(stream);
      // Replace it before serving, so the next call finds a stream ready too.
      this.#fillStandby();
      this.#serve(first.value.kind.value, stream, messages);
    }, unused);
  }

  /** Cancels every standby stream (draining, or the link is closing). */
  #cancelStandby(): void {
    clearTimeout(this.#standbyRetry);
    this.#standbyRetry = undefined;
    const streams = [...this.#standby];
    this.#standby.clear();
    for (const stream of streams) cancelStream(stream);
  }

  /** Runs an offered call on its stream (the accept, if any, already written). */
  #serve(offer: WorkOffer, stream: AgentCallStream, messages?: AsyncIterator<CallResponse>): void {
    if (this.#state === "draining" || this.#state === "stopped") {
      // Offered before the gateway saw our drain notice: refuse so it routes elsewhere.
      const status = { code: Code.Unavailable, message: "agent is draining" };
      stream.write(create(CallRequestSchema, { kind: { case: "status", value: status } }));
      stream.end();
      return;
    }
    const abort = new AbortController();
    const started = performance.now();
    const done = this.#dispatcher.run(offer, stream, abort.signal, messages).finally(() => {
      this.#running.delete(offer.callId);
      // Checked first: building the fields costs more than the call's own bookkeeping.
      if (this.#log.isLevelEnabled("debug")) {
        const ms = Math.round(performance.now() - started);
        const { callId, requestId, method } = offer;
        this.#log.debug({ callId, requestId, method, ms }, "call done");
      }
    });
    this.#running.set(offer.callId, { done, abort, client: this.#client });
  }

  /**
   * Heartbeats on their own timer, measured on the monotonic clock. Each beat is written from
   * `setImmediate`, after the event loop has read the socket, not straight from the timer: after
   * the process was stopped (SIGSTOP, a suspended VM) timers run before the socket is read, and
   * the agent should learn the session's fate (the gateway may have ended it) before writing to
   * it. A tick later than `silenceLimitMs` means the gateway has given up on this session: that
   * beat is skipped and the socket read tells what happened.
   */
  #startHeartbeats(intervalMs: number, silenceLimitMs: number): void {
    clearInterval(this.#heartbeat);
    const periodMs = Math.max(100, intervalMs);
    const control = this.#control;
    const beat = () => {
      if (this.#control !== control || this.#controlEnded) return;
      const load = this.#options.host.load();
      this.#send({ kind: { case: "heartbeat", value: { load, sequence: this.#sequence++ } } });
    };
    let lastTickAt = performance.now();
    this.#heartbeat = setInterval(() => {
      const now = performance.now();
      const gapMs = now - lastTickAt;
      lastTickAt = now;
      if (silenceLimitMs > 0 && gapMs > silenceLimitMs) {
        this.#log.warn(
          { stalledMs: Math.round(gapMs - periodMs), silenceLimitMs },
          "this process was stalled past the gateway's silence limit; not writing until the link is read",
        );
        return;
      }
      setImmediate(beat);
    }, periodMs);
    // The gateway holds a new session PENDING until it hears a heartbeat: send one at once.
    beat();
  }

  #metadata(withSession = false): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${this.#options.token}`);
    if (withSession) metadata.set(kSessionMetadata, this.#sessionId);
    return metadata;
  }

  #send(message: MessageInitShape<typeof ConnectRequestSchema>): void {
    const control = this.#control;
    if (control && !this.#controlEnded && !control.destroyed && !control.writableEnded) {
      control.write(create(ConnectRequestSchema, message));
    }
  }

  #closeLink(): void {
    clearInterval(this.#heartbeat);
    this.#cancelStandby();
    const control = this.#control;
    this.#control = undefined;
    if (control && !control.writableEnded) control.end();
    if (control) cancelStream(control);
    const client = this.#client;
    this.#client = undefined;
    // Calls still running on this link (a leaving gateway lets them finish) keep their channel
    // until they end; a lost link's calls were aborted and end at once.
    const onLink = [...this.#running.values()].filter((r) => r.client === client);
    if (onLink.length === 0) client?.close();
    else void Promise.allSettled(onLink.map((r) => r.done)).then(() => client?.close());
  }
}
