import { randomUUID } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  createContextValues,
  createServiceImplSpec,
  type ServiceImpl,
  type ServiceImplSpec,
  type Transport,
} from "@connectrpc/connect";
import type { Logger } from "pino";
import { Health } from "../../gen/health/v1/health_pb.js";
import { BackendAdminService, BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { JobService } from "../../gen/voxgate/v1/job_pb.js";
import { LlmService } from "../../gen/voxgate/v1/llm_pb.js";
import { PromptStoreService } from "../../gen/voxgate/v1/prompt_store_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { VoiceService } from "../../gen/voxgate/v1/voice_pb.js";
import { createAdmissionQueue } from "../admission/admission-queue.js";
import {
  type AgentPortLimits,
  type AgentPortServer,
  createAgentPortServer,
} from "../agent-link/agent-port-server.js";
import { createRequestGate, type GateResult } from "../auth/request-gate.js";
import { type NodeRequest, type NodeResponse, writeRpcError } from "../auth/rpc-error-response.js";
import { tenantViewOf } from "../auth/tenant-view.js";
import { createTokenStore, type Principal, type TokenEntry } from "../auth/token-store.js";
import { createBackendAdminHandler } from "../backend-admin/backend-admin-handler.js";
import {
  createServerlessBackend,
  type ServerlessBackendOptions,
} from "../backends/serverless/serverless-backend.js";
import { settingDefaults } from "../config/settings.js";
import { createStreamBudget, type StreamBudgetOptions } from "../connection-limits/index.js";
import { createConsoleFrontend } from "../console/console-frontend.js";
import { createJobExecutors, renderLimitsFromSettings } from "../jobs/executors/index.js";
import { createJobSystem, type JobSettingValues } from "../jobs/job-system.js";
import { createSqlUsageStore } from "../limits/sql-usage-store.js";
import { createUsageMeter, type UsageMeter } from "../limits/usage-meter.js";
import { createLlmHandler } from "../llm/llm-handler.js";
import { createGatewayMetrics } from "../metrics/gateway-metrics.js";
import { createMetricsFrontend, createMetricsListener } from "../metrics/metrics-frontend.js";
import { createOpenAiFrontend, type OpenAiFrontendOptions } from "../openai/openai-frontend.js";
import { createApiDocsFrontend } from "../openapi/index.js";
import { createNamedPromptMethods } from "../prompt-store/named-prompt-handler.js";
import type { PromptStore } from "../prompt-store/prompt-store.js";
import { createPromptStoreHandler } from "../prompt-store/prompt-store-handler.js";
import { createPromptUploadFrontend } from "../prompt-store/prompt-upload-frontend.js";
import { createReflectionServices } from "../reflection/index.js";
import {
  type BackendRegistry,
  createBackendRegistry,
  createHealthProber,
  type RoutingSettings,
  routingOptionsFromSettings,
} from "../registry/index.js";
import { createRelayDebugLog } from "../relay/relay-debug-log.js";
import { createRelayDebugSocket } from "../relay/relay-debug-socket.js";
import { createRelayFrontend } from "../relay/relay-frontend.js";
import {
  DEFAULT_STORYFORGE_OPTIONS,
  type StoryForgeOptions,
} from "../storyforge/storyforge-options.js";
import { createStoryForgeRuntime } from "../storyforge/storyforge-runtime.js";
import { createTlsFiles, type TlsFiles, TlsFilesError } from "../tls/tls-files.js";
import { traceHttpRequest } from "../tracing/http-server-span.js";
import { createTracingInterceptor } from "../tracing/tracing-interceptor.js";
import { createRestTranscoder, type UnknownQueryPolicy } from "../transcoding/index.js";
import type { AudioContainerOptions } from "../tts/audio-container.js";
import { createTtsHandler } from "../tts/tts-handler.js";
import { createClonePromptResolver } from "../voices/clone-prompt-resolver.js";
import { createTenantPromptStore } from "../voices/tenant-prompt-store.js";
import { createVoiceAudioTools } from "../voices/voice-audio-tools.js";
import { createVoiceHandler } from "../voices/voice-handler.js";
import { kCallContext } from "./call-context.js";
import { createConnectNodeHandler } from "./connect-node-handler.js";
import { type CorsPolicyOptions, createCorsPolicy } from "./cors-policy.js";
import { createFaultInterceptor } from "./fault-interceptor.js";
import { gatewaySettings } from "./gateway-settings.js";
import {
  createGatewayStorage,
  type GatewayStorage,
  type GatewayStorageOptions,
} from "./gateway-storage.js";
import { createHealthHandler, createServingStatus } from "./health-handler.js";
import { createHealthRoutes } from "./health-routes.js";
import type { HttpFrontend, HttpRoute } from "./http-frontend.js";
import { type DeclaredRoute, openApiTemplate } from "./http-route-spec.js";
import { createInProcessTransport } from "./in-process-transport.js";
import { createLoggingInterceptor } from "./logging-interceptor.js";
import { createPublicServer, type PublicServer, type PublicServerLimits } from "./public-server.js";
import { REST_SERVICES } from "./public-services.js";

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  /** Public API port interface and port (0 = any free); with `tls`, HTTPS only (ALPN h2/http1.1). */
  public: {
    host: string;
    port: number;
    limits?: Partial<PublicServerLimits>;
    /** Caps on requests in flight; missing keys take the settings' defaults. */
    streams?: Partial<StreamBudgetOptions>;
    tls?: PortTlsOptions | undefined;
    /**
     * On start, open this port only once a backend is READY, waiting at most this long, in ms
     * (0 = at once). @default setting openAfterBackendMs
     */
    openAfterBackendMs?: number;
  };
  /** Agent port interface and port (0 = any free); with `tls`, gRPC over TLS only. */
  agent: {
    host: string;
    port: number;
    limits?: Partial<AgentPortLimits>;
    tls?: AgentPortTlsOptions | undefined;
  };
  /**
   * Interval at which certificate, key and CA files are checked for changes, in ms; 0 = reload
   * only on {@link Gateway.reloadCertificates} (SIGHUP). @default setting tlsPollIntervalMs
   */
  tlsPollIntervalMs?: number;
  /** Prometheus metrics. */
  metrics?: {
    /**
     * A loopback `host:port` where `/metrics` is also served without a token (`""` = none).
     * @default ""
     */
    listen?: string;
    /** Whether to add Node process metrics. @default true */
    processMetrics?: boolean;
  };
  /**
   * Whether `/readyz` needs a READY backend that can synthesize (besides accepting work and a
   * database that answers). @default setting readyNeedsBackend
   */
  readyNeedsBackend?: boolean;
  /** Accepted tokens (hashed). */
  tokens: readonly TokenEntry[];
  /** Static backends (serverless endpoints), registered at start with their API keys resolved. */
  backends?: readonly ServerlessBackendOptions[];
  /** Request limits of the public API. */
  limits: {
    /** Longest synthesis text, in characters. */
    maxTextChars: number;
    /** Largest request message, in bytes. */
    maxRequestBytes: number;
    /** Largest whole clip, in bytes. */
    maxClipBytes: number;
    /** Deadline of calls without one, in ms. */
    defaultTimeoutMs: number;
    /** Longest deadline a caller may ask for, in ms. */
    maxTimeoutMs: number;
    /** Largest reference recording (or audio to analyze), in bytes. @default setting maxReferenceBytes */
    maxReferenceBytes?: number;
    /** Longest reference recording (or audio to analyze), in seconds. @default setting maxReferenceSeconds */
    maxReferenceSeconds?: number;
    /** Deepest JSON nesting of a request body, on every JSON way in. @default setting maxJsonDepth */
    maxJsonDepth?: number;
    /** Longest conversation of one text generation call, in characters. @default setting maxLlmPromptChars */
    maxLlmPromptChars?: number;
  };
  /**
   * Where voices, prompts and (later) jobs are stored. @default a temporary data dir with an
   * in-memory database and a filesystem store, deleted at close: hand-built options (tests) work
   * without it and leave nothing behind.
   */
  storage?: GatewayStorageOptions;
  /**
   * Durable jobs: runner, limits and webhooks (README: Settings), and the segments of one render
   * synthesized at once; missing keys take their defaults.
   */
  jobs?: Partial<JobSettingValues> & { renderConcurrency?: number };
  /** Backend health: active probes and circuit breakers; missing keys take their defaults. */
  health?: Partial<GatewayHealthOptions>;
  /**
   * Admission queue: where calls wait when every capable backend slot is busy; missing keys take
   * the settings queueMax and queueMaxWaitMs.
   */
  admission?: { maxQueued?: number; maxWaitMs?: number };
  /**
   * How often per-token usage is shared with other replicas through the database, in ms.
   * @default setting usageFlushMs
   */
  usageFlushMs?: number;
  /** Audio encoding on the gateway (MP3 bit rate). */
  audio?: AudioContainerOptions;
  /** REST/JSON transcoding: unknown query parameters are refused (400) or ignored. @default reject */
  rest?: { unknownQuery: UnknownQueryPolicy };
  /** Browser access from other origins (CORS). @default no origin allowed */
  cors?: CorsPolicyOptions;
  /** The StoryForge surface and Cloud job worker. @default DEFAULT_STORYFORGE_OPTIONS */
  storyforge?: StoryForgeOptions;
  /**
   * The OpenAI-compatible API: voice and model aliases, the voice list without a token.
   * @default the built-in voice aliases, no model aliases, lists need a token
   */
  openai?: Pick<OpenAiFrontendOptions, "voiceAliases" | "modelAliases" | "publicVoiceList">;
  /**
   * Longest a drain (SIGTERM) waits for running calls and jobs before they are cut, in ms.
   * @default setting drainTimeoutMs
   */
  drainTimeoutMs?: number;
  /** Root logger. */
  log: Logger;
}

/** How a drain ({@link Gateway.drain}) ended. */
export interface DrainResult {
  /** Everything finished in time: nothing is cut by the close that follows. */
  drained: boolean;
  /** Time from the start of the drain to its end, in ms. */
  ms: number;
  /** Calls still running when it ended (cut by the close that follows): request id and path. */
  cutCalls: { requestId: string; path: string }[];
  /** Jobs still running here when it ended (given back by the close that follows). */
  cutJobs: string[];
}

/** Certificate and key files of a TLS port (PEM); reloaded when they change. */
export interface PortTlsOptions {
  /** Certificate chain file, leaf first. */
  certFile: string;
  /** Private key file. */
  keyFile: string;
}

/** TLS of the agent port: the server identity plus optional client certificates (mTLS). */
export interface AgentPortTlsOptions extends PortTlsOptions {
  /** CA file that signs agents' client certificates; set: a trusted client certificate is required. */
  clientCaFile?: string | undefined;
  /** Require the client certificate to name the agent id of the hello (needs `clientCaFile`). */
  requireAgentIdentity?: boolean | undefined;
}

/**
 * How the gateway judges backend health: the settings of the same names (README: Settings), which
 * hold their defaults.
 */
export interface GatewayHealthOptions extends RoutingSettings {
  /** Interval of `GPUBackendService.Health` probes of each backend, in ms. */
  probeIntervalMs: number;
  /** Deadline of one probe, in ms. */
  probeTimeoutMs: number;
}

/** Where a started gateway listens. */
export interface GatewayAddresses {
  /** Base URL of the public API, e.g. `http://127.0.0.1:8080`. */
  publicUrl: string;
  /** Bound public port. */
  publicPort: number;
  /** Bound agent port. */
  agentPort: number;
}

/** Options of {@link Gateway.listen}. */
export interface GatewayListenOptions {
  /**
   * Called once the agent port is bound, before the public port is (`voxgate start` starts its
   * local agent then, while the rest of the gateway starts).
   */
  onAgentPort?: (port: number) => void;
  /**
   * A new embedded database (one that holds no state yet) is opened in the background only once
   * this settles; a call that needs it first opens it at once. `voxgate start` keeps the seconds
   * of CPU that creating it costs away from its local agent's start and the first call.
   * @default open at once
   */
  openNewDatabaseAfter?: Promise<unknown>;
}

/** A gateway: public API port, agent port and the registry between them. */
export interface Gateway {
  /** The backend registry. */
  readonly registry: BackendRegistry;
  /** Per-token usage counters; `flush()` shares them with other replicas now. */
  readonly usage: Pick<UsageMeter, "flush">;
  /**
   * Takes the data directory's lock, then starts both ports: the agent port at once (while the
   * database opens), the public port once a database that holds state is open and its jobs
   * resumed.
   */
  listen(options?: GatewayListenOptions): Promise<GatewayAddresses>;
  /**
   * Reads the TLS certificate, key and CA files of both ports again (what SIGHUP does); new
   * connections use them, established ones keep theirs. Resolves with whether any changed.
   */
  reloadCertificates(): Promise<boolean>;
  /**
   * Drains for a restart: readiness off at once (`/readyz` 503, gRPC health NOT_SERVING), both
   * listeners closed (a load balancer's next connection goes to another replica; the port is
   * free for the next gateway), no new jobs claimed and running ones wound down and given back,
   * agents told to go once no call waits in the admission queue, and running calls let finish.
   * Resolves when nothing runs, after `drainTimeoutMs`, or when `signal` aborts (a second SIGTERM),
   * saying what is still running; call {@link close} next. Idempotent (later calls share the
   * first one's result).
   */
  drain(reason: string, options?: { signal?: AbortSignal }): Promise<DrainResult>;
  /**
   * Replaces the accepted tokens (what SIGHUP and a changed tokens file do): a client token no
   * longer listed is refused on its next call, and an agent whose token is no longer listed (or
   * lost the agent scope) has its session ended at once (running calls cancelled) and cannot
   * rejoin. Per-token limits follow the new entries.
   *
   * @throws Error (keeping the current tokens) when an entry is invalid or names repeat.
   */
  reloadTokens(tokens: readonly TokenEntry[]): void;
  /** Closes both ports (agents are told by their streams ending). Idempotent. */
  close(graceMs?: number): Promise<void>;
  /**
   * Every HTTP route the public port answers besides Connect/gRPC/gRPC-Web's
   * `/package.Service/Method`: each frontend's declared routes (REST bindings, the OpenAI,
   * StoryForge and relay surfaces, health, docs, …) and the relay's debug WebSocket, in the
   * order they are matched. The OpenAPI document must describe each (test/openapi-routes.test.ts).
   */
  httpRoutes(): DeclaredRoute[];
}

/** Pairs a service with its complete implementation (a missing method is a compile error). */
function implement<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceImplSpec {
  return createServiceImplSpec<S>(service, impl);
}

const PUBLIC_SERVICES = [
  TtsService,
  VoiceService,
  PromptStoreService,
  JobService,
  BackendAdminService,
  LlmService,
] as const;

/**
 * Assembles a gateway from validated options.
 *
 * @throws TlsFilesError when a port's certificate, key or CA file is missing or invalid.
 */
export function createGateway(options: GatewayOptions): Gateway {
  const { log, limits } = options;
  // Read first: bad certificate files stop the gateway before anything else starts.
  const tlsFiles = createPortTlsFiles(options);
  const defaults = settingDefaults(gatewaySettings);
  // Missing health keys (hand-built options) take the settings' defaults.
  const health: GatewayHealthOptions = { ...defaults, ...options.health };
  // Known once the public port listens; signed URLs of the filesystem store point at it.
  let publicUrl = "";
  const storage = createGatewayStorage(options.storage ?? {}, () => publicUrl, log);
  // Job executors call this gateway's own services in process. That transport is made below from
  // the service list, which holds JobService itself, so they reach it through this forwarder.
  let selfTransport: Transport | undefined;
  const toSelf: Transport = {
    unary: (method, signal, timeoutMs, header, input, contextValues) =>
      (selfTransport as Transport).unary(method, signal, timeoutMs, header, input, contextValues),
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      (selfTransport as Transport).stream(method, signal, timeoutMs, header, input, contextValues),
  };
  const jobs = createJobSystem({
    database: storage.database,
    blobs: storage.blobs,
    dataDir: storage.dataDir,
    executors: createJobExecutors({
      tts: createClient(TtsService, toSelf),
      voices: createClient(VoiceService, toSelf),
      limits: renderLimitsFromSettings({
        ...defaults,
        ...options.jobs,
        maxTextChars: limits.maxTextChars,
      }),
      audio: options.audio,
    }),
    maxTextChars: limits.maxTextChars,
    settings: options.jobs ?? {},
    log,
    // `metrics` is made below; webhooks are sent only after the gateway started.
    onWebhookDelivery: (outcome) => metrics.observeWebhookDelivery(outcome),
  });
  const registry = createBackendRegistry({
    log,
    ...routingOptionsFromSettings(health),
    admission: createAdmissionQueue({
      ...(options.admission?.maxQueued !== undefined
        ? { maxQueued: options.admission.maxQueued }
        : {}),
      ...(options.admission?.maxWaitMs !== undefined
        ? { maxWaitMs: options.admission.maxWaitMs }
        : {}),
    }),
  });
  const metrics = createGatewayMetrics({
    registry,
    processMetrics: options.metrics?.processMetrics ?? true,
    jobs,
  });
  const metricsListener = options.metrics?.listen
    ? createMetricsListener(options.metrics.listen, metrics, log)
    : undefined;
  // Recent registry changes for the relay's debug view; recorded from the start.
  const relayDebugLog = createRelayDebugLog({ registry });
  const prober = createHealthProber({
    registry,
    log,
    intervalMs: health.probeIntervalMs,
    timeoutMs: health.probeTimeoutMs,
  });
  for (const backend of options.backends ?? []) {
    registry.add(
      // Serverless workers cannot hold a stream: they alone get short-lived signed prompt URLs.
      createServerlessBackend({
        ...backend,
        log,
        signPromptUrl: storage.signPromptUrl,
        // Workers that make prompts themselves (qwen3-v1) get the voice's reference recording.
        async promptReference(digest) {
          const [voiceId] = await storage.voices.voicesUsingPrompt(digest, 1);
          const voice = voiceId ? await storage.voices.get(voiceId) : undefined;
          if (!voice) return undefined;
          return {
            audio: await storage.references.get(voice.referenceDigest),
            referenceText: voice.referenceText,
          };
        },
      }),
      "configured static backend",
    );
  }
  const maxJsonDepth = limits.maxJsonDepth ?? defaults.maxJsonDepth;
  const tokens = createTokenStore(options.tokens);
  const shutdown = new AbortController();
  // Aborted when a drain starts: readiness and gRPC health report NOT_SERVING from then on.
  const draining = new AbortController();
  const notServing = AbortSignal.any([shutdown.signal, draining.signal]);
  /** Public requests running now, by response: what a drain waits for and a cut names. */
  const running = new Map<NodeResponse, { requestId: string; path: string }>();
  /** When the last public request came in (monotonic ms): a drain ends after a quiet spell. */
  let lastRequestAt = 0;
  const usageFlushMs = options.usageFlushMs ?? gatewaySettings.usageFlushMs.defaultValue;
  const meter = createUsageMeter({
    limits: new Map(options.tokens.map((t) => [t.name, t])),
    // Only a PostgreSQL server is shared by replicas; an embedded database has nobody to tell.
    store: /^postgres(ql)?:\/\//.test(options.storage?.databaseUrl ?? "")
      ? createSqlUsageStore({
          database: () => storage.database.get(),
          // Three missed flushes: that replica is gone, its calls no longer count.
          staleAfterMs: 3 * usageFlushMs,
        })
      : undefined,
    gatewayId: randomUUID(),
    flushIntervalMs: usageFlushMs,
    log,
  });
  const gate = createRequestGate({ tokens, log, meter });
  // The gate runs before Connect reads a byte of the body; what it learns rides on the request.
  const admitted = new WeakMap<NodeRequest, GateResult>();
  const referenceLimits = {
    maxReferenceBytes: limits.maxReferenceBytes ?? gatewaySettings.maxReferenceBytes.defaultValue,
    maxReferenceSeconds:
      limits.maxReferenceSeconds ?? gatewaySettings.maxReferenceSeconds.defaultValue,
  };
  const voiceAudio = createVoiceAudioTools({ ...referenceLimits, registry });
  const streams = createStreamBudget({
    maxStreams: options.public.streams?.maxStreams ?? gatewaySettings.maxStreams.defaultValue,
    maxUnauthenticatedStreams:
      options.public.streams?.maxUnauthenticatedStreams ??
      gatewaySettings.maxUnauthenticatedStreams.defaultValue,
  });

  // A named prompt's bytes stay until its last name is deleted (DeleteNamedPrompt).
  const namedGuardedPrompts: PromptStore = {
    ...storage.prompts,
    async delete(digest) {
      if ((await storage.promptNames.countUsing(digest)) > 0) {
        throw new ConnectError(
          `prompt ${digest} has a name; delete the named prompt instead`,
          Code.FailedPrecondition,
        );
      }
      return storage.prompts.delete(digest);
    },
  };
  const adminPrompts: PromptStore = {
    ...namedGuardedPrompts,
    // A prompt a voice speaks with stays until that voice is deleted (DeleteVoice).
    async delete(digest) {
      const users = await storage.voices.voicesUsingPrompt(digest, 3);
      if (users.length > 0) {
        throw new ConnectError(
          `prompt ${digest} is used by voice ${users.join(", ")}; delete the voice instead`,
          Code.FailedPrecondition,
        );
      }
      const existed = await namedGuardedPrompts.delete(digest);
      await storage.voices.removePromptOwner(digest, undefined);
      return existed;
    },
  };
  // Each caller sees the prompts of its tenant (admins: all, where deleting checks voices below).
  const promptsFor = (principal: Principal | undefined): PromptStore => {
    const viewer = tenantViewOf(principal);
    return createTenantPromptStore({
      store: viewer.all ? adminPrompts : namedGuardedPrompts,
      repository: storage.voices,
      viewer,
    });
  };
  // One list of implementations serves Connect/gRPC/gRPC-Web and, in process, the other frontends.
  const services: ServiceImplSpec[] = [
    implement(
      TtsService,
      createTtsHandler({
        registry,
        limits,
        defaultTimeoutMs: limits.defaultTimeoutMs,
        audio: options.audio ?? {},
        meter,
        resolveClonePrompt: createClonePromptResolver({
          repository: storage.voices,
          prompts: storage.voicePrompts,
          names: storage.promptNames,
        }),
      }),
    ),
    implement(
      VoiceService,
      createVoiceHandler({
        registry,
        storage: {
          repository: storage.voices,
          prompts: {
            ...storage.voicePrompts,
            // A deleted voice's prompt stays while a prompt name still points at it.
            async delete(digest) {
              if ((await storage.promptNames.countUsing(digest)) > 0) return;
              await storage.voicePrompts.delete(digest);
            },
          },
          references: storage.references,
        },
        audio: voiceAudio,
        limits: { ...referenceLimits, maxPromptBytes: storage.maxPromptBytes },
        defaultTimeoutMs: limits.defaultTimeoutMs,
      }),
    ),
    implement(PromptStoreService, {
      ...createPromptStoreHandler({
        store: adminPrompts,
        storeFor: promptsFor,
      }),
      ...createNamedPromptMethods({
        names: storage.promptNames,
        prompts: storage.voicePrompts,
        // A named prompt belongs to its tenant as an uploaded one does (ListPrompts, prompt_id).
        addOwner: (digest, tenant, metadata) =>
          storage.voices.addPromptOwner(digest, tenant, metadata),
        removeOwner: (digest, tenant) => storage.voices.removePromptOwner(digest, tenant),
        async describePrompt(digest, principal) {
          // Naming reaches only the caller's own prompts: naming another tenant's digest would
          // make the caller an owner of bytes (and a transcript) it never had.
          const prompt = await promptsFor(principal).stat(digest);
          if (!prompt) return undefined;
          return {
            digest: prompt.digest,
            sizeBytes: prompt.sizeBytes,
            model: { family: prompt.metadata.modelFamily, size: prompt.metadata.modelSize },
            engine: prompt.metadata.engine,
            referenceText: prompt.metadata.referenceText,
          };
        },
        promptInUseByVoice: async (digest) =>
          (await storage.voices.voicesUsingPrompt(digest, 1)).length > 0,
        registry,
        audio: voiceAudio,
        limits: { ...referenceLimits, maxPromptBytes: storage.maxPromptBytes },
        defaultTimeoutMs: limits.defaultTimeoutMs,
      }),
    }),
    implement(JobService, jobs.handler),
    implement(
      LlmService,
      createLlmHandler({
        registry,
        limits: {
          maxLlmPromptChars:
            limits.maxLlmPromptChars ?? gatewaySettings.maxLlmPromptChars.defaultValue,
        },
        defaultTimeoutMs: limits.defaultTimeoutMs,
      }),
    ),
    implement(BackendAdminService, createBackendAdminHandler({ registry, metrics })),
    implement(
      Health,
      createHealthHandler({
        registry,
        database: storage.database,
        databaseServices: [VoiceService.typeName, PromptStoreService.typeName, JobService.typeName],
        services: PUBLIC_SERVICES.map((s) => s.typeName),
        shutdownSignal: notServing,
      }),
    ),
    // gRPC server reflection, so `buf curl` and grpcurl need no schema; open like health (the
    // same schema is published at /openapi.json).
    ...createReflectionServices({ services: [...PUBLIC_SERVICES, Health] }),
  ];
  const storyforge = createStoryForgeRuntime({
    options: options.storyforge ?? DEFAULT_STORYFORGE_OPTIONS,
    registry,
    database: storage.database,
    jobs: createClient(JobService, toSelf),
    voices: createClient(VoiceService, toSelf),
    timeoutMs: limits.maxTimeoutMs,
    maxJsonDepth,
    log,
  });
  // The fault interceptor is inside the logging one, so the log shows the translated code.
  // Tracing is outermost, so its span covers what the log line reports.
  const interceptors = [
    createTracingInterceptor(),
    createLoggingInterceptor(log, metrics),
    createFaultInterceptor(),
  ];
  const inProcess = createInProcessTransport({ services, interceptors });
  selfTransport = inProcess;
  // REST/JSON from google.api.http. Every annotated service gets its routes, served or not yet
  // (those answer UNIMPLEMENTED).
  const restTranscoder = createRestTranscoder({
    services: REST_SERVICES,
    transport: inProcess,
    log,
    maxRequestBytes: limits.maxRequestBytes,
    maxJsonDepth,
    maxTimeoutMs: limits.maxTimeoutMs,
    unknownQuery: options.rest?.unknownQuery ?? "reject",
    unmatched: "not-found",
  });
  // Non-Connect ways in (REST transcoding, OpenAI-compatible API) register here; each calls
  // services through `inProcess`.
  const frontends: HttpFrontend[] = [
    // The web console for people at `/` (browsers only: other clients of `/` fall through).
    createConsoleFrontend({ log }),
    // /healthz and /readyz for load balancers, without a token.
    // Prometheus text for scrapers with the read-only `metrics` scope.
    createMetricsFrontend(metrics),
    createHealthRoutes({
      registry,
      servingStatus: createServingStatus({
        registry,
        database: storage.database,
        databaseServices: [VoiceService.typeName, PromptStoreService.typeName, JobService.typeName],
        services: PUBLIC_SERVICES.map((s) => s.typeName),
        shutdownSignal: notServing,
      }),
      readiness: {
        accepting: () => publicUrl !== "" && !notServing.aborted,
        // A readiness probe must answer quickly even when the database hangs.
        database: () => databaseAnswers(storage, 2000),
      },
      readyNeedsBackend: options.readyNeedsBackend ?? defaults.readyNeedsBackend,
    }),
    // /openapi.json and the /docs reference page, without a token.
    createApiDocsFrontend(),
    // Signed read URLs of the filesystem store: the signature is the credential (serverless
    // workers hold no token).
    ...(storage.frontend ? [storage.frontend] : []),
    // Raw-body prompt uploads, streamed into the store (before REST, which would buffer them).
    createPromptUploadFrontend({
      store: storage.prompts,
      storeFor: promptsFor,
      maxPromptBytes: storage.maxPromptBytes,
      log,
    }),
    createOpenAiFrontend({
      transport: inProcess,
      registry,
      maxRequestBytes: limits.maxRequestBytes,
      maxJsonDepth,
      defaultTimeoutMs: limits.defaultTimeoutMs,
      maxTimeoutMs: limits.maxTimeoutMs,
      log,
      ...options.openai,
    }),
    // StoryForge Cloud's calls (the Tinybox node API). Before REST: mounted at the root, its
    // /v1/tts and /v1/audio/* take the place of the REST bindings of those paths.
    storyforge.frontend(inProcess),
    // The Qwen3 relay API: its bodies on its paths (`/api/v1/…`), over the same services.
    createRelayFrontend({
      transport: inProcess,
      registry,
      debugLog: relayDebugLog,
      maxRequestBytes: limits.maxRequestBytes,
      maxJsonDepth,
      defaultTimeoutMs: limits.defaultTimeoutMs,
      log,
    }),
    // REST/JSON. Keep it last: it answers 404 for paths nobody serves.
    restTranscoder,
  ];

  const rpcHandler = createConnectNodeHandler({
    routes(router) {
      for (const service of services) {
        for (const method of Object.values(service.methods)) {
          router.rpc(method.method, method.impl as never);
        }
      }
    },
    interceptors,
    readMaxBytes: limits.maxRequestBytes,
    // Whole clips can be large; the clip limit bounds them before they are encoded.
    writeMaxBytes: limits.maxClipBytes + 1024 * 1024,
    // Longer deadlines are cut to the maximum (connect-node's own `maxTimeoutMs`, kept as a
    // backstop, would refuse them).
    deadlineCapMs: limits.maxTimeoutMs,
    maxTimeoutMs: limits.maxTimeoutMs,
    // Audio is already dense: compressing it costs CPU and throughput for nothing, and accepting
    // compressed requests would open the door to decompression bombs.
    acceptCompression: [],
    shutdownSignal: shutdown.signal,
    jsonLimits: { maxDepth: maxJsonDepth, maxBytes: limits.maxRequestBytes },
    log,
    contextValues(req) {
      const result = admitted.get(req);
      const requestId = result?.requestId ?? "";
      let callLog: Logger | undefined;
      return createContextValues().set(kCallContext, {
        requestId,
        principal: result?.principal,
        ...(result?.clientAddress ? { clientAddress: result.clientAddress } : {}),
        // Built on first use: most calls log one line, which the interceptor writes itself.
        get log() {
          callLog ??= log.child({ requestId });
          return callLog;
        },
      });
    },
  });

  // Paths of the RPCs connect-node serves: such requests skip the frontends' route matching.
  const rpcPaths = new Set(
    services.flatMap((service) =>
      Object.values(service.methods).map((m) => `/${m.method.parent.typeName}/${m.method.name}`),
    ),
  );

  // The relay's live debug view, the one WebSocket of the public port.
  const relayDebugSocket = createRelayDebugSocket({
    debugLog: relayDebugLog,
    admit: (req, res, route) => gate.admit(req, res, route),
    log,
  });
  const corsPolicy = createCorsPolicy(options.cors ?? { allowedOrigins: [] });
  const publicServer: PublicServer = createPublicServer({
    upgrade: relayDebugSocket.upgrade,
    host: options.public.host,
    port: options.public.port,
    ...(options.public.limits ? { limits: options.public.limits } : {}),
    ...(tlsFiles.public ? { tls: tlsFiles.public } : {}),
    log,
    handler(req, res) {
      // Before the gate: a browser's preflight carries no token.
      if (corsPolicy.handle(req, res)) return;
      const url = req.url ?? "";
      const query = url.indexOf("?");
      const path = query < 0 ? url : url.slice(0, query);
      // Probes and scrapes come every few seconds and would bury the calls in spans.
      if (UNTRACED_PATHS.has(path)) serve(req, res, path);
      else traceHttpRequest(req, res, () => serve(req, res, path));
    },
  });
  /** Routes one public request: frontends, gate, stream budget, then the route or Connect. */
  function serve(req: NodeRequest, res: NodeResponse, path: string): void {
    let route: HttpRoute | undefined;
    if (!rpcPaths.has(path)) {
      for (const frontend of frontends) {
        route = frontend.route(req);
        if (route) break;
      }
    }
    // During a drain a client that read the GOAWAY and still opens streams is sent to
    // another replica; open routes (health: readiness says 503 by itself) still answer.
    if (
      draining.signal.aborted &&
      !(route && route.service === undefined) &&
      publicServer.arrivedAfterNotice(req)
    ) {
      refuseWhileDraining(req, res, route?.writeError ?? writeRpcError);
      return;
    }
    const result = gate.admit(req, res, route);
    if (!result) return;
    if (
      !streams.admit(req, res, result.principal !== undefined, route?.writeError ?? writeRpcError)
    ) {
      return;
    }
    // Health probes keep coming while a replica drains: only work counts.
    if (!(route && route.service === undefined)) lastRequestAt = performance.now();
    // Watches follow state and never end by themselves: a drain does not wait for them.
    if (!/(\/Watch[A-Z][A-Za-z]*|:watch)$/.test(path)) {
      running.set(res, { requestId: result.requestId, path });
      res.once("close", () => running.delete(res));
    }
    if (route) {
      route.serve(req, res, result);
      return;
    }
    admitted.set(req, result);
    rpcHandler(req, res);
  }
  const agentServer: AgentPortServer = createAgentPortServer({
    host: options.agent.host,
    port: options.agent.port,
    tokens,
    registry,
    log,
    promptSource: storage.promptSource,
    onPromptDelivery: (delivery) => metrics.observePromptDelivery(delivery),
    ...(options.agent.limits ? { limits: options.agent.limits } : {}),
    ...(tlsFiles.agent
      ? {
          tls: {
            files: tlsFiles.agent,
            requireAgentIdentity:
              options.agent.tls?.requireAgentIdentity ?? defaults.agentCertMatchId,
          },
        }
      : {}),
  });

  let closing: Promise<void> | undefined;
  let drainDone: Promise<DrainResult> | undefined;
  const drainTimeoutMs = options.drainTimeoutMs ?? gatewaySettings.drainTimeoutMs.defaultValue;
  return {
    registry,
    usage: meter,
    httpRoutes() {
      return [...frontends, relayDebugSocket].flatMap((f) =>
        f.routes.map((r) => ({ method: r.method, path: openApiTemplate(r.path) })),
      );
    },
    drain(reason, drainOptions = {}) {
      drainDone ??= (async () => {
        const started = performance.now();
        const deadline = started + drainTimeoutMs;
        const stop = drainOptions.signal;
        draining.abort(new Error(reason));
        log.info({ reason, drainTimeoutMs, calls: running.size }, "draining");
        publicServer.drain();
        // Both ports are free for a replacement at once (a restart starts it right away); the
        // agents connected here stay until they are told to go below.
        agentServer.closeListener();
        let jobsIdle = false;
        void jobs.drain().then(() => {
          jobsIdle = true;
        });
        // Calls still arriving on kept-alive connections and calls waiting in the admission queue
        // were accepted: they still need the agents. A load balancer sends requests on the
        // connections it holds here until it has used each once (the answer closes it) or closed
        // it idle itself, so the agents go only once no connection that may still bring a
        // request is open (a quiet spell alone let a late request find no agent).
        const quiet = () => performance.now() - Math.max(lastRequestAt, started) >= kDrainQuietMs;
        await waitUntil(
          () =>
            (registry.admissionStats()?.queued ?? 0) === 0 &&
            publicServer.openConnections() === 0 &&
            quiet(),
          deadline,
          stop,
        );
        agentServer.drain(reason);
        await waitUntil(() => running.size === 0 && jobsIdle, deadline, stop);
        const cutCalls = [...running.values()];
        const cutJobs = jobs.runningJobIds;
        const ms = Math.round(performance.now() - started);
        const drained = cutCalls.length === 0 && cutJobs.length === 0;
        if (drained) log.info({ ms }, "drained: every running call and job finished");
        else {
          log.warn(
            {
              ms,
              why: stop?.aborted ? "stopped again" : `drain timeout ${drainTimeoutMs} ms`,
              cutCalls,
              cutJobs,
            },
            "drain cut short: these calls are cut and these jobs given back",
          );
        }
        return { drained, ms, cutCalls, cutJobs };
      })();
      return drainDone;
    },
    async listen(listenOptions = {}) {
      let publicPort: number;
      let agentPort: number;
      try {
        // The lock first: a second gateway on the same data directory fails before it binds.
        await storage.lock();
        // The agent port opens while the database opens (seconds on a loaded machine): agents
        // that lost their gateway to a restart are back as soon as the port is. A database that
        // already holds state is open, and its jobs resumed, before the public port opens.
        const agentBound = listenOn("agent", options.agent.host, options.agent.port, () =>
          agentServer.listen(),
        ).then((port) => {
          listenOptions.onAgentPort?.(port);
          return port;
        });
        // Every step settles before anything is closed: a port still binding when another step
        // failed would start listening after the close and keep the process alive.
        const bound = await Promise.allSettled([
          agentBound,
          (async () => {
            await storage.start(
              listenOptions.openNewDatabaseAfter
                ? { openNewAfter: listenOptions.openNewDatabaseAfter }
                : {},
            );
            // Resumes jobs at once when the database holds some (a restart, or a killed peer's
            // leases).
            await jobs.start();
            return 0;
          })(),
          ...(metricsListener ? [metricsListener.listen()] : []),
        ]);
        for (const result of bound) if (result.status === "rejected") throw result.reason;
        agentPort = bound[0]?.status === "fulfilled" ? bound[0].value : 0;
        // The agent port opens first: a replacement behind a load balancer that cannot read
        // /readyz takes calls only once its agents are back (or the wait is over).
        const waitMs = options.public.openAfterBackendMs ?? defaults.openAfterBackendMs;
        if (waitMs > 0) {
          const waitStarted = performance.now();
          await waitUntil(
            () => registry.list().some((b) => b.state === BackendState.READY),
            waitStarted + waitMs,
            undefined,
          );
          log.info(
            { waitedMs: Math.round(performance.now() - waitStarted), limitMs: waitMs },
            "opening the public port",
          );
        }
        publicPort = await listenOn("public", options.public.host, options.public.port, () =>
          publicServer.listen(),
        );
      } catch (err) {
        // Half a gateway must not stay up (a supervisor would take it for a running one): what
        // did start is closed before the error goes to the caller.
        await this.close(0).catch(() => {});
        throw err;
      }
      prober.start();
      meter.start();
      storyforge.start();
      const host = options.public.host.includes(":")
        ? `[${options.public.host}]`
        : options.public.host;
      const shownHost = host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host;
      publicUrl = `${tlsFiles.public ? "https" : "http"}://${shownHost}:${publicPort}`;
      return { publicUrl, publicPort, agentPort };
    },
    async reloadCertificates() {
      const changed = await Promise.all([tlsFiles.public?.reload(), tlsFiles.agent?.reload()]);
      return changed.some(Boolean);
    },
    reloadTokens(entries) {
      tokens.replace(entries);
      meter.setLimits(new Map(entries.map((t) => [t.name, t])));
      const ended = agentServer.recheckTokens();
      log.info({ tokens: entries.length, agentSessionsEnded: ended }, "tokens reloaded");
    },
    close(graceMs = 2000) {
      closing ??= (async () => {
        tlsFiles.public?.close();
        tlsFiles.agent?.close();
        shutdown.abort();
        relayDebugSocket.close();
        relayDebugLog.close();
        metrics.close();
        await metricsListener?.close();
        await prober.stop();
        await storyforge.close();
        await Promise.all([
          agentServer.close(graceMs),
          publicServer.close(graceMs),
          // Running jobs are given back (queued again), so another gateway resumes them at once.
          jobs.close(),
        ]);
        // The last counts reach the other replicas before the database goes.
        await meter.close();
        // Calls have stopped: only now may what they write to go away.
        await storage.close();
        log.info("gateway closed");
      })();
      return closing;
    },
  };
}

/**
 * Time without a new public request that ends a drain once nothing runs, in ms: long enough for a
 * load balancer to have stopped routing here (see {@link Gateway.drain}).
 */
export const kDrainQuietMs = 1000;

/**
 * Resolves once `done()` holds (checked every 20 ms), `deadline` (on the monotonic clock) passed
 * or `signal` aborted.
 */
async function waitUntil(
  done: () => boolean,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  while (!done() && performance.now() < deadline && !signal?.aborted) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Refuses a request that came after its connection was told the gateway is going away: 503 /
 * UNAVAILABLE with `Retry-After`, in the route's error shape (OpenAI's on OpenAI routes).
 */
function refuseWhileDraining(
  req: NodeRequest,
  res: NodeResponse,
  writeError: (req: NodeRequest, res: NodeResponse, error: ConnectError) => void,
): void {
  const error = new ConnectError(
    "this gateway is shutting down: retry, another replica (or its replacement) takes the call",
    Code.Unavailable,
  );
  error.metadata.set("retry-after", "1");
  writeError(req, res, error);
}

/** Paths served without a span: health probes and metrics scrapes. */
const UNTRACED_PATHS = new Set(["/healthz", "/readyz", "/metrics", "/v1/metrics"]);

/** A port of the gateway could not be bound (in use, no permission, no such address). */
export class ListenError extends Error {
  override name = "ListenError";
}

/** Reports whether `error` is a {@link ListenError}. */
export function isListenError(error: unknown): error is ListenError {
  return error instanceof ListenError;
}

/** Runs `listen`, turning its failure into a {@link ListenError} that names the port. */
async function listenOn(
  what: "public" | "agent",
  host: string,
  port: number,
  listen: () => Promise<number>,
): Promise<number> {
  try {
    return await listen();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // grpc-js reports a bind failure in its message only ("... listen EADDRINUSE: ...").
    const code =
      (err as NodeJS.ErrnoException).code ??
      /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(message)?.[1];
    const why =
      code === "EADDRINUSE"
        ? "the port is already in use"
        : code === "EACCES"
          ? "no permission to bind it"
          : message;
    throw new ListenError(
      `cannot listen on the ${what} port ${host}:${port}: ${why}${code ? ` (${code})` : ""}`,
      { cause: err },
    );
  }
}

/** Loads (and starts watching) the TLS files of each port that has some. */
function createPortTlsFiles(options: GatewayOptions): { public?: TlsFiles; agent?: TlsFiles } {
  const pollIntervalMs =
    options.tlsPollIntervalMs ?? gatewaySettings.tlsPollIntervalMs.defaultValue;
  const publicTls = options.public.tls;
  const agentTls = options.agent.tls;
  if (agentTls?.requireAgentIdentity && !agentTls.clientCaFile) {
    throw new TlsFilesError(
      "agent port: matching certificates to agent ids needs client certificates: set VOXGATE_AGENT_CLIENT_CA_FILE",
    );
  }
  return {
    ...(publicTls
      ? {
          public: createTlsFiles({
            ...publicTls,
            purpose: "public port",
            pollIntervalMs,
            log: options.log,
          }),
        }
      : {}),
    ...(agentTls
      ? {
          agent: createTlsFiles({
            certFile: agentTls.certFile,
            keyFile: agentTls.keyFile,
            caFile: agentTls.clientCaFile,
            purpose: "agent port",
            pollIntervalMs,
            log: options.log,
          }),
        }
      : {}),
  };
}

/**
 * Whether the database answers `SELECT 1` within `timeoutMs`: undefined when it does, else why
 * not (never the server's address). A database still being opened counts as not answering.
 */
async function databaseAnswers(
  storage: GatewayStorage,
  timeoutMs: number,
): Promise<string | undefined> {
  if (storage.database.state === "opening") return "opening";
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([
      storage.database.get().then(async (db) => {
        await db.query("SELECT 1");
        return undefined;
      }),
      timeout,
    ]);
  } catch {
    return "unreachable";
  } finally {
    clearTimeout(timer);
  }
}
