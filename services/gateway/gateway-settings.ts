import { z } from "zod";
import { SCOPES } from "../auth/scopes.js";
import {
  type StaticBackendConfig,
  staticBackendsSchema,
} from "../backends/serverless/serverless-config.js";
import {
  agentTokenVariable,
  boolSetting,
  intSetting,
  logFormatSpec,
  logLevelSpec,
  portSetting,
  setting,
  stringSetting,
} from "../config/settings.js";
import { jobSettings } from "../jobs/job-settings.js";
import { openAiSettings } from "../openai/openai-settings.js";
import { storyforgeSettings } from "../storyforge/storyforge-settings.js";
import { gatewayTlsSettings } from "../tls/tls-settings.js";
import { checkCorsOrigin } from "./cors-policy.js";

const MiB = 1024 * 1024;

/** The token list of the config file, `VOXGATE_TOKENS_JSON` and the tokens file. */
export const tokenEntriesSchema = z.array(
  z
    .object({
      name: z.string().min(1),
      sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/, { error: "sha256 must be 64 lowercase hex characters" }),
      scopes: z
        .array(z.enum(SCOPES))
        .min(1)
        .refine((scopes) => !(scopes.includes("agent") && scopes.length > 1), {
          error: "an agent token carries the agent scope only (client and agent tokens stay apart)",
        }),
      // Per-token limits (README: Per-token limits); missing or 0 = none.
      maxConcurrentCalls: z.number().int().min(0).max(1_000_000).optional(),
      maxRequestsPerMinute: z.number().int().min(0).max(100_000_000).optional(),
      maxCharsPerDay: z.number().int().min(0).max(1_000_000_000_000).optional(),
      tenant: z
        .string()
        .regex(/^[A-Za-z0-9._:@-]{1,128}$/, {
          error: "tenant must be 1-128 characters of letters, digits and ._:@-",
        })
        .optional(),
      // Agent tokens only: the routing priorities agents with this token may claim, within the
      // gateway-wide VOXGATE_AGENT_MIN_PRIORITY..VOXGATE_AGENT_MAX_PRIORITY (README: Hostile agents).
      agentMinPriority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
      agentMaxPriority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
    })
    .refine(
      (entry) =>
        entry.agentMinPriority === undefined ||
        entry.agentMaxPriority === undefined ||
        entry.agentMinPriority <= entry.agentMaxPriority,
      { error: "agentMinPriority must not exceed agentMaxPriority" },
    )
    .refine(
      (entry) =>
        (entry.agentMinPriority === undefined && entry.agentMaxPriority === undefined) ||
        entry.scopes.includes("agent"),
      { error: "agentMinPriority/agentMaxPriority belong on agent tokens only" },
    ),
);

/**
 * Every gateway setting. `voxgate gateway --help` prints this table; the README documents it and a
 * test keeps the two in step.
 */
export const gatewaySettings = {
  host: setting({
    key: "host",
    flag: "host",
    env: "VOXGATE_HOST",
    description: "interface of the public API port (0.0.0.0 to serve other machines)",
    schema: stringSetting,
    defaultValue: "127.0.0.1",
  }),
  port: setting({
    key: "port",
    flag: "port",
    env: "VOXGATE_PORT",
    description: "public API port: Connect, gRPC, gRPC-Web over HTTP/1.1 and h2c (0 = any free)",
    schema: portSetting,
    defaultValue: 8080,
  }),
  agentHost: setting({
    key: "agentHost",
    flag: "agent-host",
    env: "VOXGATE_AGENT_HOST",
    description: "interface of the agent port",
    schema: stringSetting,
    defaultValue: "127.0.0.1",
  }),
  agentPort: setting({
    key: "agentPort",
    flag: "agent-port",
    env: "VOXGATE_AGENT_PORT",
    description: "agent port: gRPC only, where GPU hosts dial in (0 = any free)",
    schema: portSetting,
    defaultValue: 8081,
  }),
  // TLS of both ports (services/tls/tls-settings.ts).
  ...gatewayTlsSettings,
  tokens: setting({
    key: "tokens",
    flag: undefined,
    env: "VOXGATE_TOKENS_JSON",
    description:
      'accepted tokens, hashed: [{"name","sha256","scopes":["tts",...],"tenant"}] (voxgate token create; tenant defaults to name)',
    schema: z.preprocess((value, context) => {
      if (typeof value !== "string") return value;
      try {
        return JSON.parse(value) as unknown;
      } catch (err) {
        context.addIssue({ code: "custom", message: `not valid JSON: ${(err as Error).message}` });
        return z.NEVER;
      }
    }, tokenEntriesSchema),
    defaultValue: [],
  }),
  tokensFile: setting({
    key: "tokensFile",
    flag: "tokens-file",
    env: "VOXGATE_TOKENS_FILE",
    description:
      'JSON file of more accepted tokens, same form as tokens ([{"name","sha256","scopes"}]); reloaded when it changes and on SIGHUP ("" = none)',
    schema: stringSetting,
    defaultValue: "",
  }),
  tokensPollIntervalMs: setting({
    key: "tokensPollIntervalMs",
    flag: "tokens-poll-interval-ms",
    env: "VOXGATE_TOKENS_POLL_INTERVAL_MS",
    description:
      "interval the tokens file and the config file are checked for changes at, in ms (0 = on SIGHUP only)",
    schema: intSetting(0, 3_600_000),
    defaultValue: 2000,
  }),
  clientToken: setting({
    key: "clientToken",
    flag: undefined,
    env: "VOXGATE_TOKEN",
    description: "a plain client token accepted with every client scope (handy for one-box setups)",
    schema: stringSetting,
    defaultValue: "",
  }),
  agentToken: setting({
    key: "agentToken",
    flag: undefined,
    description: "a plain agent token accepted on the agent port",
    ...agentTokenVariable,
  }),
  backends: setting({
    key: "backends",
    flag: undefined,
    env: "VOXGATE_BACKENDS_JSON",
    description:
      'static backends: [{"id","kind":"runpod","endpoint","apiKeyEnv","priority","slots","engines":[...]}] (README: Serverless backends)',
    schema: staticBackendsSchema,
    defaultValue: [] as StaticBackendConfig[],
  }),
  logLevel: logLevelSpec,
  logFormat: logFormatSpec,
  maxTextChars: setting({
    key: "maxTextChars",
    flag: "max-text-chars",
    env: "VOXGATE_MAX_TEXT_CHARS",
    description: "longest text one synthesis call accepts, in characters",
    schema: intSetting(1, 1_000_000),
    defaultValue: 5000,
  }),
  maxRequestBytes: setting({
    key: "maxRequestBytes",
    flag: "max-request-bytes",
    env: "VOXGATE_MAX_REQUEST_BYTES",
    description: "largest request message on the public port, in bytes",
    schema: intSetting(1024, 1024 * MiB),
    defaultValue: 16 * MiB,
  }),
  maxJsonDepth: setting({
    key: "maxJsonDepth",
    flag: "max-json-depth",
    env: "VOXGATE_MAX_JSON_DEPTH",
    description:
      "deepest nesting of [ and { in a JSON request body (Connect, REST, OpenAI), checked while it is read",
    schema: intSetting(1, 10_000),
    defaultValue: 64,
  }),
  maxClipBytes: setting({
    key: "maxClipBytes",
    flag: "max-clip-bytes",
    env: "VOXGATE_MAX_CLIP_BYTES",
    description: "largest whole-clip answer (Synthesize), in bytes; streams are not limited by it",
    schema: intSetting(1024, 1024 * MiB),
    defaultValue: 64 * MiB,
  }),
  defaultTimeoutMs: setting({
    key: "defaultTimeoutMs",
    flag: "default-timeout-ms",
    env: "VOXGATE_DEFAULT_TIMEOUT_MS",
    description: "deadline of calls whose client sets none, in ms",
    schema: intSetting(100, 24 * 3_600_000),
    defaultValue: 300_000,
  }),
  maxTimeoutMs: setting({
    key: "maxTimeoutMs",
    flag: "max-timeout-ms",
    env: "VOXGATE_MAX_TIMEOUT_MS",
    description: "longest deadline a client may ask for, in ms (longer ones are cut to it)",
    schema: intSetting(100, 24 * 3_600_000),
    defaultValue: 600_000,
  }),
  restUnknownQuery: setting({
    key: "restUnknownQuery",
    flag: "rest-unknown-query",
    env: "VOXGATE_REST_UNKNOWN_QUERY",
    description:
      "REST/JSON query parameters that name no field: reject (400 INVALID_ARGUMENT) or ignore",
    schema: z.enum(["reject", "ignore"]),
    defaultValue: "reject" as "reject" | "ignore",
  }),
  corsAllowedOrigins: setting({
    key: "corsAllowedOrigins",
    flag: "cors-allowed-origins",
    env: "VOXGATE_CORS_ALLOWED_ORIGINS",
    description:
      "origins whose web pages may call the public port (CORS), comma-separated, e.g. https://app.example.com; * = any; empty = none",
    schema: z
      .union([z.string().transform((v) => v.split(",")), z.array(z.string())])
      .transform((list) => list.map((v) => v.trim()).filter((v) => v !== ""))
      .superRefine((list, context) => {
        for (const origin of list) {
          const problem = checkCorsOrigin(origin);
          if (problem) context.addIssue({ code: "custom", message: problem });
        }
      }),
    defaultValue: [] as string[],
  }),
  maxStreamsPerConnection: setting({
    key: "maxStreamsPerConnection",
    flag: "max-streams-per-connection",
    env: "VOXGATE_MAX_STREAMS_PER_CONNECTION",
    description: "concurrent HTTP/2 streams per client connection on the public port",
    schema: intSetting(1, 100_000),
    defaultValue: 256,
  }),
  headersTimeoutMs: setting({
    key: "headersTimeoutMs",
    flag: "headers-timeout-ms",
    env: "VOXGATE_HEADERS_TIMEOUT_MS",
    description: "time a client has to send request headers, in ms",
    schema: intSetting(100, 600_000),
    defaultValue: 10_000,
  }),
  maxHeaderBytes: setting({
    key: "maxHeaderBytes",
    flag: "max-header-bytes",
    env: "VOXGATE_MAX_HEADER_BYTES",
    description:
      "largest request headers on the public port, in bytes; larger ones are answered 431 (HTTP/2: up to 16 times this, past it the stream is refused)",
    schema: intSetting(1024, 1024 * 1024),
    defaultValue: 16 * 1024,
  }),
  minBodyBytesPerSecond: setting({
    key: "minBodyBytesPerSecond",
    flag: "min-body-bytes-per-second",
    env: "VOXGATE_MIN_BODY_BYTES_PER_SECOND",
    description:
      "least rate a request body must arrive at, averaged over each headers-timeout window, in bytes/s; slower requests are cut",
    schema: intSetting(1, 1024 * MiB),
    defaultValue: 1024,
  }),
  idleTimeoutMs: setting({
    key: "idleTimeoutMs",
    flag: "idle-timeout-ms",
    env: "VOXGATE_IDLE_TIMEOUT_MS",
    description: "time an HTTP/2 client connection may stay without an open stream, in ms",
    schema: intSetting(100, 24 * 3_600_000),
    defaultValue: 120_000,
  }),
  maxConnections: setting({
    key: "maxConnections",
    flag: "max-connections",
    env: "VOXGATE_MAX_CONNECTIONS",
    description: "open client connections on the public port; more are closed at once (and logged)",
    schema: intSetting(1, 1_000_000),
    defaultValue: 4096,
  }),
  maxConnectionsPerClient: setting({
    key: "maxConnectionsPerClient",
    flag: "max-connections-per-client",
    env: "VOXGATE_MAX_CONNECTIONS_PER_CLIENT",
    description:
      "open connections from one client address on the public port; more are closed at once (and logged)",
    schema: intSetting(1, 1_000_000),
    defaultValue: 256,
  }),
  maxStreams: setting({
    key: "maxStreams",
    flag: "max-streams",
    env: "VOXGATE_MAX_STREAMS",
    description:
      "requests (HTTP/1.1 requests and HTTP/2 streams) in flight on the public port; more get RESOURCE_EXHAUSTED",
    schema: intSetting(1, 1_000_000),
    defaultValue: 4096,
  }),
  maxUnauthenticatedStreams: setting({
    key: "maxUnauthenticatedStreams",
    flag: "max-unauthenticated-streams",
    env: "VOXGATE_MAX_UNAUTHENTICATED_STREAMS",
    description:
      "requests without a token (health checks, Health/Watch) in flight on the public port; more get RESOURCE_EXHAUSTED",
    schema: intSetting(1, 1_000_000),
    defaultValue: 128,
  }),
  agentMaxMessageBytes: setting({
    key: "agentMaxMessageBytes",
    flag: "agent-max-message-bytes",
    env: "VOXGATE_AGENT_MAX_MESSAGE_BYTES",
    description: "largest message on the agent port, in bytes",
    schema: intSetting(1024, 1024 * MiB),
    defaultValue: 4 * MiB,
  }),
  agentMaxStreams: setting({
    key: "agentMaxStreams",
    flag: "agent-max-streams",
    env: "VOXGATE_AGENT_MAX_STREAMS",
    description: "concurrent streams per agent connection (control + calls)",
    schema: intSetting(2, 100_000),
    defaultValue: 256,
  }),
  agentMaxConnections: setting({
    key: "agentMaxConnections",
    flag: "agent-max-connections",
    env: "VOXGATE_AGENT_MAX_CONNECTIONS",
    description: "open connections on the agent port in all; more are closed at once (logged)",
    schema: intSetting(1, 1_000_000),
    defaultValue: 1024,
  }),
  agentMaxConnectionsPerClient: setting({
    key: "agentMaxConnectionsPerClient",
    flag: "agent-max-connections-per-client",
    env: "VOXGATE_AGENT_MAX_CONNECTIONS_PER_CLIENT",
    description:
      "open connections on the agent port from one address (agents behind one NAT share it); more are closed at once",
    schema: intSetting(1, 1_000_000),
    defaultValue: 256,
  }),
  agentFirstStreamTimeoutMs: setting({
    key: "agentFirstStreamTimeoutMs",
    flag: "agent-first-stream-timeout-ms",
    env: "VOXGATE_AGENT_FIRST_STREAM_TIMEOUT_MS",
    description:
      "time a new agent-port connection has to open its first stream (TLS, HTTP/2 preface, headers), in ms",
    schema: intSetting(100, 600_000),
    defaultValue: 10_000,
  }),
  agentIdleTimeoutMs: setting({
    key: "agentIdleTimeoutMs",
    flag: "agent-idle-timeout-ms",
    env: "VOXGATE_AGENT_IDLE_TIMEOUT_MS",
    description:
      "time an agent-port connection may stay without an open stream before GOAWAY, in ms",
    schema: intSetting(1000, 86_400_000),
    defaultValue: 300_000,
  }),
  agentMaxStandbyStreams: setting({
    key: "agentMaxStandbyStreams",
    flag: "agent-max-standby-streams",
    env: "VOXGATE_AGENT_MAX_STANDBY_STREAMS",
    description:
      "idle call streams an agent may keep open in advance (calls start on them without an offer round trip)",
    schema: intSetting(0, 10_000),
    defaultValue: 64,
  }),
  agentKeepaliveMs: setting({
    key: "agentKeepaliveMs",
    flag: "agent-keepalive-ms",
    env: "VOXGATE_AGENT_KEEPALIVE_MS",
    description:
      "interval of HTTP/2 PINGs on each agent connection, in ms (README: Agent liveness)",
    schema: intSetting(100, 3_600_000),
    defaultValue: 1000,
  }),
  agentKeepaliveTimeoutMs: setting({
    key: "agentKeepaliveTimeoutMs",
    flag: "agent-keepalive-timeout-ms",
    env: "VOXGATE_AGENT_KEEPALIVE_TIMEOUT_MS",
    description:
      "silence on an agent connection (no byte, no PING answer) beyond one ping interval and twice its round trip before it is closed, in ms",
    schema: intSetting(100, 600_000),
    defaultValue: 1500,
  }),
  agentMaxRttMs: setting({
    key: "agentMaxRttMs",
    flag: "agent-max-rtt-ms",
    env: "VOXGATE_AGENT_MAX_RTT_MS",
    description:
      "largest agent round trip the liveness limits scale with (and assumed until an agent's first PING answer), in ms",
    schema: intSetting(0, 60_000),
    defaultValue: 2000,
  }),
  heartbeatIntervalMs: setting({
    key: "heartbeatIntervalMs",
    flag: "heartbeat-interval-ms",
    env: "VOXGATE_HEARTBEAT_INTERVAL_MS",
    description: "interval agents must heartbeat at, in ms",
    schema: intSetting(100, 600_000),
    defaultValue: 1000,
  }),
  heartbeatMissLimit: setting({
    key: "heartbeatMissLimit",
    flag: "heartbeat-miss-limit",
    env: "VOXGATE_HEARTBEAT_MISS_LIMIT",
    description:
      "heartbeat intervals (plus twice the round trip) with neither a heartbeat nor a byte from an agent before it is dropped",
    schema: intSetting(1, 100),
    defaultValue: 3,
  }),
  agentHelloTimeoutMs: setting({
    key: "agentHelloTimeoutMs",
    flag: "agent-hello-timeout-ms",
    env: "VOXGATE_AGENT_HELLO_TIMEOUT_MS",
    description: "time a connecting agent has to say hello, in ms",
    schema: intSetting(100, 600_000),
    defaultValue: 5000,
  }),
  agentMaxSlots: setting({
    key: "agentMaxSlots",
    flag: "agent-max-slots",
    env: "VOXGATE_AGENT_MAX_SLOTS",
    description:
      "most slots (calls at once) an agent may claim in its hello; claims are clamped to 1..this",
    schema: intSetting(1, 100_000),
    defaultValue: 256,
  }),
  agentMinPriority: setting({
    key: "agentMinPriority",
    flag: "agent-min-priority",
    env: "VOXGATE_AGENT_MIN_PRIORITY",
    description:
      "least routing priority an agent may claim (lower is preferred); lower claims are raised to it",
    schema: intSetting(-1_000_000, 1_000_000),
    defaultValue: 0,
  }),
  agentMaxPriority: setting({
    key: "agentMaxPriority",
    flag: "agent-max-priority",
    env: "VOXGATE_AGENT_MAX_PRIORITY",
    description: "greatest routing priority an agent may claim; higher claims are lowered to it",
    schema: intSetting(-1_000_000, 1_000_000),
    defaultValue: 1000,
  }),
  agentMaxVoices: setting({
    key: "agentMaxVoices",
    flag: "agent-max-voices",
    env: "VOXGATE_AGENT_MAX_VOICES",
    description: "most preset voices one agent may list over all its engines; the rest are dropped",
    schema: intSetting(1, 1_000_000),
    defaultValue: 1000,
  }),
  agentAcceptTimeoutMs: setting({
    key: "agentAcceptTimeoutMs",
    flag: "agent-accept-timeout-ms",
    env: "VOXGATE_AGENT_ACCEPT_TIMEOUT_MS",
    description:
      "time a connected agent has to open the stream of a call offered to it, in ms (a backstop: a lost agent fails its offers when liveness drops it)",
    schema: intSetting(100, 600_000),
    // Measured: at load 25 on 2 cores, live echo agents took over 5 s to open offered calls, and
    // every such call failed over and then failed. Dead agents never reach this: liveness ends
    // their session (≤ 3 s) and fails their offers at once.
    defaultValue: 15_000,
  }),
  probeIntervalMs: setting({
    key: "probeIntervalMs",
    flag: "probe-interval-ms",
    env: "VOXGATE_PROBE_INTERVAL_MS",
    description: "interval of health probes (GPUBackendService.Health) of each backend, in ms",
    schema: intSetting(100, 3_600_000),
    defaultValue: 2000,
  }),
  probeTimeoutMs: setting({
    key: "probeTimeoutMs",
    flag: "probe-timeout-ms",
    env: "VOXGATE_PROBE_TIMEOUT_MS",
    description:
      "deadline of one health probe, in ms; two failed probes in a row mark a backend unhealthy",
    schema: intSetting(50, 600_000),
    defaultValue: 1000,
  }),
  breakerFailureThreshold: setting({
    key: "breakerFailureThreshold",
    flag: "breaker-failure-threshold",
    env: "VOXGATE_BREAKER_FAILURE_THRESHOLD",
    description:
      "failed calls in a row that open a backend's circuit breaker (half of the last 10 do too)",
    schema: intSetting(1, 1000),
    defaultValue: 5,
  }),
  breakerCooldownMs: setting({
    key: "breakerCooldownMs",
    flag: "breaker-cooldown-ms",
    env: "VOXGATE_BREAKER_COOLDOWN_MS",
    description: "time an open breaker keeps a backend out before a trial call, in ms",
    schema: intSetting(0, 3_600_000),
    defaultValue: 10_000,
  }),
  breakerHalfOpenSuccesses: setting({
    key: "breakerHalfOpenSuccesses",
    flag: "breaker-half-open-successes",
    env: "VOXGATE_BREAKER_HALF_OPEN_SUCCESSES",
    description: "successful trial calls that close a half-open breaker",
    schema: intSetting(1, 100),
    defaultValue: 2,
  }),
  breakerFailurePercent: setting({
    key: "breakerFailurePercent",
    flag: "breaker-failure-percent",
    env: "VOXGATE_BREAKER_FAILURE_PERCENT",
    description:
      "share of failed calls among the last breakerWindowCalls that opens a breaker, in %",
    schema: intSetting(1, 100),
    defaultValue: 50,
  }),
  breakerWindowCalls: setting({
    key: "breakerWindowCalls",
    flag: "breaker-window-calls",
    env: "VOXGATE_BREAKER_WINDOW_CALLS",
    description: "recent calls per backend the failure share is taken over",
    schema: intSetting(1, 10_000),
    defaultValue: 10,
  }),
  probeFailureThreshold: setting({
    key: "probeFailureThreshold",
    flag: "probe-failure-threshold",
    env: "VOXGATE_PROBE_FAILURE_THRESHOLD",
    description: "failed probes in a row that make a backend unhealthy",
    schema: intSetting(1, 100),
    defaultValue: 2,
  }),
  maxAttempts: setting({
    key: "maxAttempts",
    flag: "max-attempts",
    env: "VOXGATE_MAX_ATTEMPTS",
    description: "most backends one call tries (failover happens only before the first audio byte)",
    schema: intSetting(1, 20),
    defaultValue: 3,
  }),
  openAfterBackendMs: setting({
    key: "openAfterBackendMs",
    flag: "open-after-backend-ms",
    env: "VOXGATE_OPEN_AFTER_BACKEND_MS",
    description:
      "on start, open the public port only once a backend is READY, waiting at most this long, in ms (0 = at once; behind a load balancer that does not read /readyz, a restarted replica then takes calls once its agents are back)",
    schema: intSetting(0, 600_000),
    defaultValue: 0,
  }),
  drainTimeoutMs: setting({
    key: "drainTimeoutMs",
    flag: "drain-timeout-ms",
    env: "VOXGATE_DRAIN_TIMEOUT_MS",
    description:
      "longest a stopping gateway (SIGTERM) lets running calls and job segments finish before it cuts them, in ms",
    schema: intSetting(0, 3_600_000),
    defaultValue: 30_000,
  }),
  usageFlushMs: setting({
    key: "usageFlushMs",
    flag: "usage-flush-ms",
    env: "VOXGATE_USAGE_FLUSH_MS",
    description:
      "how often a gateway shares its tokens' counted usage with the other replicas through the database, in ms",
    schema: intSetting(100, 600_000),
    defaultValue: 2000,
  }),
  queueMax: setting({
    key: "queueMax",
    flag: "queue-max",
    env: "VOXGATE_QUEUE_MAX",
    description:
      "most calls waiting for a free backend slot at once (fair across tokens); beyond it 429 with Retry-After; 0 = no queue",
    schema: intSetting(0, 1_000_000),
    defaultValue: 1000,
  }),
  queueMaxWaitMs: setting({
    key: "queueMaxWaitMs",
    flag: "queue-max-wait-ms",
    env: "VOXGATE_QUEUE_MAX_WAIT_MS",
    description:
      "longest time a call waits for a free slot, in ms (its deadline may end it sooner); then 429 with Retry-After",
    schema: intSetting(1, 3_600_000),
    defaultValue: 30_000,
  }),
  mp3BitrateKbps: setting({
    key: "mp3BitrateKbps",
    flag: "mp3-bitrate-kbps",
    env: "VOXGATE_MP3_BITRATE_KBPS",
    description: "constant MP3 bit rate, in kbit/s; 0 = 64 per channel",
    schema: intSetting(0, 320),
    defaultValue: 0,
  }),
  dataDir: setting({
    key: "dataDir",
    flag: "data-dir",
    env: "VOXGATE_DATA_DIR",
    description: "directory of the embedded stores (database, blobs, generated secrets)",
    schema: stringSetting,
    defaultValue: ".voxgate",
  }),
  databaseUrl: setting({
    key: "databaseUrl",
    flag: undefined,
    env: "VOXGATE_DATABASE_URL",
    description:
      'PostgreSQL URL (postgres://user:pass@host/db); "" = embedded PGlite under the data dir, "memory:" = in memory',
    schema: z.string(),
    defaultValue: "",
  }),
  databaseStatementTimeoutMs: setting({
    key: "databaseStatementTimeoutMs",
    flag: "database-statement-timeout-ms",
    env: "VOXGATE_DATABASE_STATEMENT_TIMEOUT_MS",
    description:
      "longest PostgreSQL statement, in ms: then UNAVAILABLE (the server cancels it; a hung server is given up on)",
    schema: intSetting(100, 600_000),
    defaultValue: 15_000,
  }),
  databaseConnectTimeoutMs: setting({
    key: "databaseConnectTimeoutMs",
    flag: "database-connect-timeout-ms",
    env: "VOXGATE_DATABASE_CONNECT_TIMEOUT_MS",
    description: "longest wait for a PostgreSQL connection, in ms: then UNAVAILABLE",
    schema: intSetting(100, 600_000),
    defaultValue: 5000,
  }),
  databaseMaxConnections: setting({
    key: "databaseMaxConnections",
    flag: "database-max-connections",
    env: "VOXGATE_DATABASE_MAX_CONNECTIONS",
    description: "most pooled connections to the PostgreSQL server, per gateway",
    schema: intSetting(1, 1000),
    defaultValue: 10,
  }),
  store: setting({
    key: "store",
    flag: "store",
    env: "VOXGATE_STORE",
    description:
      "object store of prompts and outputs: filesystem (under <dataDir>/blobs), s3 or gcs",
    schema: z.enum(["filesystem", "s3", "gcs"]),
    defaultValue: "filesystem" as "filesystem" | "s3" | "gcs",
  }),
  s3Bucket: setting({
    key: "s3Bucket",
    flag: "s3-bucket",
    env: "VOXGATE_S3_BUCKET",
    description: "S3 bucket (store s3)",
    schema: stringSetting,
    defaultValue: "",
  }),
  s3Endpoint: setting({
    key: "s3Endpoint",
    flag: "s3-endpoint",
    env: "VOXGATE_S3_ENDPOINT",
    description: 'endpoint of an S3-compatible service (MinIO, R2, Spaces); "" = AWS',
    schema: stringSetting,
    defaultValue: "",
  }),
  s3Region: setting({
    key: "s3Region",
    flag: "s3-region",
    env: "VOXGATE_S3_REGION",
    description: "S3 region",
    schema: stringSetting,
    defaultValue: "us-east-1",
  }),
  metricsListen: setting({
    key: "metricsListen",
    flag: "metrics-listen",
    env: "VOXGATE_METRICS_LISTEN",
    description:
      'loopback host:port that also serves GET /metrics without a token, e.g. 127.0.0.1:9464 ("" = none; /metrics on the public port needs the metrics scope)',
    schema: z.string(),
    defaultValue: "",
  }),
  readyNeedsBackend: setting({
    key: "readyNeedsBackend",
    flag: "ready-needs-backend",
    env: "VOXGATE_READY_NEEDS_BACKEND",
    description:
      "whether GET /readyz answers 503 while no READY backend can synthesize (off for a gateway that only serves jobs or voices)",
    schema: boolSetting,
    defaultValue: true,
  }),
  s3ForcePathStyle: setting({
    key: "s3ForcePathStyle",
    flag: "s3-force-path-style",
    env: "VOXGATE_S3_FORCE_PATH_STYLE",
    description: "path-style S3 URLs (host/bucket/key), which MinIO needs",
    schema: boolSetting,
    defaultValue: false,
  }),
  s3Prefix: setting({
    key: "s3Prefix",
    flag: "s3-prefix",
    env: "VOXGATE_S3_PREFIX",
    description: 'key prefix inside the S3 bucket, ending with / (e.g. "voxgate/")',
    schema: stringSetting,
    defaultValue: "",
  }),
  s3AccessKeyId: setting({
    key: "s3AccessKeyId",
    flag: undefined,
    env: "VOXGATE_S3_ACCESS_KEY_ID",
    description: 'S3 access key id; "" = the AWS default credential chain',
    schema: stringSetting,
    defaultValue: "",
  }),
  s3SecretAccessKey: setting({
    key: "s3SecretAccessKey",
    flag: undefined,
    env: "VOXGATE_S3_SECRET_ACCESS_KEY",
    description: 'S3 secret access key; "" = the AWS default credential chain',
    schema: stringSetting,
    defaultValue: "",
  }),
  s3PartSizeBytes: setting({
    key: "s3PartSizeBytes",
    flag: "s3-part-size-bytes",
    env: "VOXGATE_S3_PART_SIZE_BYTES",
    description: "part size of streamed S3 multipart uploads, in bytes (5 MiB at least)",
    schema: intSetting(5 * MiB, 5 * 1024 * MiB),
    defaultValue: 8 * MiB,
  }),
  gcsBucket: setting({
    key: "gcsBucket",
    flag: "gcs-bucket",
    env: "VOXGATE_GCS_BUCKET",
    description: "GCS bucket (store gcs)",
    schema: stringSetting,
    defaultValue: "",
  }),
  gcsPrefix: setting({
    key: "gcsPrefix",
    flag: "gcs-prefix",
    env: "VOXGATE_GCS_PREFIX",
    description: 'object name prefix inside the GCS bucket, ending with / (e.g. "voxgate/")',
    schema: stringSetting,
    defaultValue: "",
  }),
  gcsProject: setting({
    key: "gcsProject",
    flag: "gcs-project",
    env: "VOXGATE_GCS_PROJECT",
    description: 'GCS project id; "" = from the credentials',
    schema: stringSetting,
    defaultValue: "",
  }),
  gcsKeyFile: setting({
    key: "gcsKeyFile",
    flag: "gcs-key-file",
    env: "VOXGATE_GCS_KEY_FILE",
    description: 'service-account JSON key file; "" = Application Default Credentials',
    schema: stringSetting,
    defaultValue: "",
  }),
  gcsApiEndpoint: setting({
    key: "gcsApiEndpoint",
    flag: "gcs-api-endpoint",
    env: "VOXGATE_GCS_API_ENDPOINT",
    description: 'GCS JSON API endpoint for emulators and private endpoints; "" = Google',
    schema: stringSetting,
    defaultValue: "",
  }),
  blobUrlSecret: setting({
    key: "blobUrlSecret",
    flag: undefined,
    env: "VOXGATE_BLOB_URL_SECRET",
    description:
      'HMAC key (32+ characters) of signed URLs of the filesystem store; "" = generated once into <dataDir>/blob-url-secret',
    schema: z.string().min(32, { error: "must be at least 32 characters" }),
    defaultValue: "",
  }),
  publicUrl: setting({
    key: "publicUrl",
    flag: "public-url",
    env: "VOXGATE_PUBLIC_URL",
    description:
      'base URL serverless workers reach the gateway at, for filesystem signed URLs; "" = the public port\'s address',
    schema: z.url(),
    defaultValue: "",
  }),
  signedUrlTtlMs: setting({
    key: "signedUrlTtlMs",
    flag: "signed-url-ttl-ms",
    env: "VOXGATE_SIGNED_URL_TTL_MS",
    description:
      "lifetime of signed prompt URLs given to serverless backends, in ms (one hour at most)",
    schema: intSetting(1000, 3_600_000),
    defaultValue: 900_000,
  }),
  maxPromptBytes: setting({
    key: "maxPromptBytes",
    flag: "max-prompt-bytes",
    env: "VOXGATE_MAX_PROMPT_BYTES",
    description:
      "largest clone prompt stored, in bytes; uploads are refused as soon as they pass it",
    schema: intSetting(1024, 4096 * MiB),
    defaultValue: 64 * MiB,
  }),
  maxPromptMetadataBytes: setting({
    key: "maxPromptMetadataBytes",
    flag: "max-prompt-metadata-bytes",
    env: "VOXGATE_MAX_PROMPT_METADATA_BYTES",
    description: "largest prompt metadata (name, reference text, tags as JSON), in bytes",
    schema: intSetting(1024, 16 * MiB),
    defaultValue: 64 * 1024,
  }),
  maxReferenceBytes: setting({
    key: "maxReferenceBytes",
    flag: "max-reference-bytes",
    env: "VOXGATE_MAX_REFERENCE_BYTES",
    description:
      "largest reference recording of a cloned voice (or audio to analyze), in bytes; the request limit caps it too",
    schema: intSetting(1024, 1024 * MiB),
    defaultValue: 20 * MiB,
  }),
  maxReferenceSeconds: setting({
    key: "maxReferenceSeconds",
    flag: "max-reference-seconds",
    env: "VOXGATE_MAX_REFERENCE_SECONDS",
    description:
      "longest reference recording of a cloned voice (or audio to analyze), in seconds, read from its header",
    schema: intSetting(1, 3600),
    defaultValue: 60,
  }),
  maxLlmPromptChars: setting({
    key: "maxLlmPromptChars",
    flag: "max-llm-prompt-chars",
    env: "VOXGATE_MAX_LLM_PROMPT_CHARS",
    description:
      "longest conversation one text generation call accepts (all messages together), in characters",
    schema: intSetting(1, 10_000_000),
    defaultValue: 200_000,
  }),
  renderConcurrency: setting({
    key: "renderConcurrency",
    flag: "render-concurrency",
    env: "VOXGATE_RENDER_CONCURRENCY",
    description:
      "segments of one render job (or items of one batch job) synthesized at once, each one TtsService call",
    schema: intSetting(1, 64),
    defaultValue: 2,
  }),
  // Durable jobs and webhooks (services/jobs/job-settings.ts).
  ...jobSettings,
  // StoryForge surface, media fetcher and Cloud job worker (services/storyforge).
  ...storyforgeSettings,
  // OpenAI-compatible API: voice and model aliases, open voice list (services/openai).
  ...openAiSettings,
};

/** Resolved gateway settings. */
export type GatewaySettings = {
  [K in keyof typeof gatewaySettings]: (typeof gatewaySettings)[K]["defaultValue"];
};
