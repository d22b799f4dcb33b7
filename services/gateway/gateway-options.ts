import type { Logger } from "pino";
import { CLIENT_SCOPES } from "../auth/scopes.js";
import { hashToken } from "../auth/token-codec.js";
import type { TokenEntry } from "../auth/token-store.js";
import type { SettingValues } from "../config/settings.js";
import type { GatewayOptions } from "./gateway.js";
import type { gatewaySettings } from "./gateway-settings.js";

/** Turns resolved settings into {@link GatewayOptions}; plain env tokens are hashed here. */
export function gatewayOptionsFromSettings(
  settings: SettingValues<typeof gatewaySettings>,
  log: Logger,
): GatewayOptions {
  const tokens: TokenEntry[] = [...settings.tokens];
  if (settings.clientToken) {
    tokens.push({
      name: "env:VOXGATE_TOKEN",
      sha256: hashToken(settings.clientToken),
      scopes: CLIENT_SCOPES,
    });
  }
  if (settings.agentToken) {
    tokens.push({
      name: "env:VOXGATE_AGENT_TOKEN",
      sha256: hashToken(settings.agentToken),
      scopes: ["agent"],
    });
  }
  return {
    public: {
      host: settings.host,
      port: settings.port,
      limits: {
        maxStreamsPerConnection: settings.maxStreamsPerConnection,
        headersTimeoutMs: settings.headersTimeoutMs,
      },
    },
    agent: {
      host: settings.agentHost,
      port: settings.agentPort,
      limits: {
        maxMessageBytes: settings.agentMaxMessageBytes,
        maxConcurrentStreams: settings.agentMaxStreams,
        keepaliveTimeMs: settings.agentKeepaliveMs,
        keepaliveTimeoutMs: settings.agentKeepaliveTimeoutMs,
        heartbeatIntervalMs: settings.heartbeatIntervalMs,
        heartbeatMissLimit: settings.heartbeatMissLimit,
      },
    },
    tokens,
    limits: {
      maxTextChars: settings.maxTextChars,
      maxRequestBytes: settings.maxRequestBytes,
      maxClipBytes: settings.maxClipBytes,
      defaultTimeoutMs: settings.defaultTimeoutMs,
      maxTimeoutMs: settings.maxTimeoutMs,
    },
    log,
  };
}
