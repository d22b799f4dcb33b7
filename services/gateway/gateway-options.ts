import type { Logger } from "pino";
import type { ServerlessBackendOptions } from "../backends/serverless/serverless-backend.js";
import { SettingsError, type SettingValues } from "../config/settings.js";
import { pickJobSettings } from "../jobs/job-system.js";
import { blobStoreConfigFromSettings } from "../object-store/blob-store-config.js";
import {
  type StoryForgeOptions,
  storyforgeOptionsFromSettings,
} from "../storyforge/storyforge-options.js";
import type { AgentPortTlsOptions, GatewayOptions, PortTlsOptions } from "./gateway.js";
import type { gatewaySettings } from "./gateway-settings.js";
import { gatewayTokensFromSettings } from "./gateway-tokens.js";

/**
 * Turns resolved settings into {@link GatewayOptions}; tokens come from
 * {@link gatewayTokensFromSettings}, and each static backend's `apiKeyEnv` is looked up in `env`.
 *
 * @throws SettingsError naming every backend whose API key variable is unset or empty, or a bad
 *   tokens file.
 */
export function gatewayOptionsFromSettings(
  settings: SettingValues<typeof gatewaySettings>,
  log: Logger,
  env: Readonly<Record<string, string | undefined>> = process.env,
): GatewayOptions {
  const tokens = gatewayTokensFromSettings(settings);
  const tls = tlsFromSettings(settings);
  return {
    public: {
      host: settings.host,
      port: settings.port,
      limits: {
        maxStreamsPerConnection: settings.maxStreamsPerConnection,
        headersTimeoutMs: settings.headersTimeoutMs,
        maxHeaderBytes: settings.maxHeaderBytes,
        minBodyBytesPerSecond: settings.minBodyBytesPerSecond,
        idleTimeoutMs: settings.idleTimeoutMs,
        maxConnections: settings.maxConnections,
        maxConnectionsPerClient: settings.maxConnectionsPerClient,
      },
      streams: {
        maxStreams: settings.maxStreams,
        maxUnauthenticatedStreams: settings.maxUnauthenticatedStreams,
      },
      tls: tls.public,
      openAfterBackendMs: settings.openAfterBackendMs,
    },
    tlsPollIntervalMs: settings.tlsPollIntervalMs,
    agent: {
      host: settings.agentHost,
      port: settings.agentPort,
      tls: tls.agent,
      limits: {
        maxMessageBytes: settings.agentMaxMessageBytes,
        maxConcurrentStreams: settings.agentMaxStreams,
        maxStandbyStreams: settings.agentMaxStandbyStreams,
        keepaliveTimeMs: settings.agentKeepaliveMs,
        keepaliveTimeoutMs: settings.agentKeepaliveTimeoutMs,
        maxRttMs: settings.agentMaxRttMs,
        heartbeatIntervalMs: settings.heartbeatIntervalMs,
        heartbeatMissLimit: settings.heartbeatMissLimit,
        helloTimeoutMs: settings.agentHelloTimeoutMs,
        acceptTimeoutMs: settings.agentAcceptTimeoutMs,
        maxAgentSlots: settings.agentMaxSlots,
        minAgentPriority: settings.agentMinPriority,
        maxAgentPriority: settings.agentMaxPriority,
        maxAgentVoices: settings.agentMaxVoices,
        maxConnections: settings.agentMaxConnections,
        maxConnectionsPerClient: settings.agentMaxConnectionsPerClient,
        firstStreamTimeoutMs: settings.agentFirstStreamTimeoutMs,
        idleTimeoutMs: settings.agentIdleTimeoutMs,
      },
    },
    tokens,
    health: {
      probeIntervalMs: settings.probeIntervalMs,
      probeTimeoutMs: settings.probeTimeoutMs,
      breakerFailureThreshold: settings.breakerFailureThreshold,
      breakerCooldownMs: settings.breakerCooldownMs,
      breakerHalfOpenSuccesses: settings.breakerHalfOpenSuccesses,
      breakerFailurePercent: settings.breakerFailurePercent,
      breakerWindowCalls: settings.breakerWindowCalls,
      probeFailureThreshold: settings.probeFailureThreshold,
      maxAttempts: settings.maxAttempts,
    },
    admission: { maxQueued: settings.queueMax, maxWaitMs: settings.queueMaxWaitMs },
    usageFlushMs: settings.usageFlushMs,
    drainTimeoutMs: settings.drainTimeoutMs,
    audio: settings.mp3BitrateKbps > 0 ? { mp3BitrateKbps: settings.mp3BitrateKbps } : {},
    backends: resolveBackendKeys(settings.backends, env),
    limits: {
      maxTextChars: settings.maxTextChars,
      maxRequestBytes: settings.maxRequestBytes,
      maxClipBytes: settings.maxClipBytes,
      defaultTimeoutMs: settings.defaultTimeoutMs,
      maxTimeoutMs: settings.maxTimeoutMs,
      maxReferenceBytes: settings.maxReferenceBytes,
      maxReferenceSeconds: settings.maxReferenceSeconds,
      maxJsonDepth: settings.maxJsonDepth,
      maxLlmPromptChars: settings.maxLlmPromptChars,
    },
    storage: storageFromSettings(settings),
    jobs: { ...pickJobSettings(settings), renderConcurrency: settings.renderConcurrency },
    rest: { unknownQuery: settings.restUnknownQuery },
    cors: { allowedOrigins: settings.corsAllowedOrigins },
    storyforge: storyforgeFromSettings(settings),
    openai: {
      voiceAliases: settings.openaiVoiceAliases,
      modelAliases: settings.openaiModelAliases,
      publicVoiceList: settings.openaiPublicVoiceList,
    },
    readyNeedsBackend: settings.readyNeedsBackend,
    metrics: { listen: settings.metricsListen },
    log,
  };
}

/**
 * The TLS blocks of both ports.
 * @throws SettingsError for a certificate without its key (or the reverse), or client-certificate
 * settings on a port without TLS.
 */
function tlsFromSettings(settings: SettingValues<typeof gatewaySettings>): {
  public: PortTlsOptions | undefined;
  agent: AgentPortTlsOptions | undefined;
} {
  const problems: string[] = [];
  const pair = (certKey: string, cert: string, keyKey: string, key: string) => {
    if (Boolean(cert) !== Boolean(key)) {
      problems.push(`${certKey} and ${keyKey} go together: set both or neither`);
    }
    return cert && key ? { certFile: cert, keyFile: key } : undefined;
  };
  const publicTls = pair("tlsCertFile", settings.tlsCertFile, "tlsKeyFile", settings.tlsKeyFile);
  const agentTls = pair(
    "agentTlsCertFile",
    settings.agentTlsCertFile,
    "agentTlsKeyFile",
    settings.agentTlsKeyFile,
  );
  if (settings.agentClientCaFile && !settings.agentTlsCertFile) {
    problems.push("agentClientCaFile needs TLS on the agent port: set agentTlsCertFile too");
  }
  if (settings.agentCertMatchId && !settings.agentClientCaFile) {
    problems.push("agentCertMatchId needs client certificates: set agentClientCaFile");
  }
  if (problems.length > 0) {
    throw new SettingsError(`invalid settings:\n  - ${problems.join("\n  - ")}`);
  }
  return {
    public: publicTls,
    agent: agentTls && {
      ...agentTls,
      ...(settings.agentClientCaFile ? { clientCaFile: settings.agentClientCaFile } : {}),
      requireAgentIdentity: settings.agentCertMatchId,
    },
  };
}

/**
 * The storage block: data dir, database, object store and prompt limits.
 * @throws SettingsError for object store settings that do not fit together.
 */
function storageFromSettings(
  settings: SettingValues<typeof gatewaySettings>,
): NonNullable<GatewayOptions["storage"]> {
  let blobStore: ReturnType<typeof blobStoreConfigFromSettings>;
  try {
    blobStore = blobStoreConfigFromSettings(settings, settings.dataDir);
  } catch (err) {
    throw new SettingsError((err as Error).message);
  }
  return {
    dataDir: settings.dataDir,
    databaseUrl: settings.databaseUrl,
    databaseStatementTimeoutMs: settings.databaseStatementTimeoutMs,
    databaseConnectTimeoutMs: settings.databaseConnectTimeoutMs,
    databaseMaxConnections: settings.databaseMaxConnections,
    blobStore,
    ...(settings.publicUrl ? { publicUrl: settings.publicUrl } : {}),
    signedUrlTtlMs: settings.signedUrlTtlMs,
    maxPromptBytes: settings.maxPromptBytes,
    maxPromptMetadataBytes: settings.maxPromptMetadataBytes,
  };
}

/** The StoryForge block; its problems become SettingsErrors. */
function storyforgeFromSettings(
  settings: SettingValues<typeof gatewaySettings>,
): StoryForgeOptions {
  try {
    return storyforgeOptionsFromSettings(settings);
  } catch (err) {
    throw new SettingsError(`invalid settings: ${(err as Error).message}`);
  }
}

/** Resolves each static backend's API key from the variable its `apiKeyEnv` names. */
function resolveBackendKeys(
  backends: SettingValues<typeof gatewaySettings>["backends"],
  env: Readonly<Record<string, string | undefined>>,
): ServerlessBackendOptions[] {
  const problems: string[] = [];
  const resolved = backends.map(
    ({ kind: _kind, endpoint, apiKeyEnv, format, workerApiKeyEnv, ...backend }) => {
      const apiKey = env[apiKeyEnv] ?? "";
      const workerApiKey = workerApiKeyEnv ? (env[workerApiKeyEnv] ?? "") : "";
      if (workerApiKeyEnv && !workerApiKey) {
        problems.push(
          `backend "${backend.id}": environment variable ${workerApiKeyEnv} (workerApiKeyEnv) is not set`,
        );
      }
      if (!apiKey) {
        problems.push(
          `backend "${backend.id}": environment variable ${apiKeyEnv} (apiKeyEnv) is not set`,
        );
      }
      return {
        ...backend,
        endpointUrl: endpoint,
        apiKey,
        workerFormat: format,
        ...(workerApiKey ? { workerApiKey } : {}),
      };
    },
  );
  if (problems.length > 0) {
    throw new SettingsError(`invalid settings:\n  - ${problems.join("\n  - ")}`);
  }
  return resolved;
}
