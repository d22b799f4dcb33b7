import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { loadSettings } from "../config/settings.js";
import { gatewayOptionsFromSettings } from "./gateway-options.js";
import { gatewaySettings } from "./gateway-settings.js";

const log = pino({ level: "silent" });
const optionsFrom = (env: Record<string, string>) =>
  gatewayOptionsFromSettings(loadSettings(gatewaySettings, { argv: [], env }), log, env);

describe("gatewayOptionsFromSettings", () => {
  it("reads CORS origins as a comma-separated list and refuses what is not an origin", () => {
    expect(optionsFrom({}).cors).toEqual({ allowedOrigins: [] });
    expect(
      optionsFrom({ VOXGATE_CORS_ALLOWED_ORIGINS: " https://a.test, http://b.test:8080 ," }).cors,
    ).toEqual({ allowedOrigins: ["https://a.test", "http://b.test:8080"] });
    expect(() => optionsFrom({ VOXGATE_CORS_ALLOWED_ORIGINS: "https://a.test/" })).toThrow(
      /corsAllowedOrigins from VOXGATE_CORS_ALLOWED_ORIGINS: "https:\/\/a.test\/" is not an origin: write it as https:\/\/a.test/,
    );
    expect(() => optionsFrom({ VOXGATE_CORS_ALLOWED_ORIGINS: "a.test" })).toThrow(/not an origin/);
  });

  it("maps routing and health settings onto the registry options", () => {
    const options = optionsFrom({
      VOXGATE_MAX_ATTEMPTS: "5",
      VOXGATE_PROBE_FAILURE_THRESHOLD: "4",
      VOXGATE_BREAKER_FAILURE_PERCENT: "30",
      VOXGATE_BREAKER_WINDOW_CALLS: "20",
    });
    expect(options.health).toMatchObject({
      maxAttempts: 5,
      probeFailureThreshold: 4,
      breakerFailurePercent: 30,
      breakerWindowCalls: 20,
    });
  });

  it("maps the agent link timeouts", () => {
    const options = optionsFrom({
      VOXGATE_AGENT_HELLO_TIMEOUT_MS: "1500",
      VOXGATE_AGENT_ACCEPT_TIMEOUT_MS: "2500",
    });
    expect(options.agent.limits).toMatchObject({ helloTimeoutMs: 1500, acceptTimeoutMs: 2500 });
  });

  it("leaves the MP3 bit rate to the encoder unless one is set", () => {
    expect(optionsFrom({}).audio).toEqual({});
    expect(optionsFrom({ VOXGATE_MP3_BITRATE_KBPS: "96" }).audio).toEqual({ mp3BitrateKbps: 96 });
  });

  it("hashes plain env tokens and never keeps them", () => {
    const options = optionsFrom({ VOXGATE_TOKEN: "vxg_plain", VOXGATE_AGENT_TOKEN: "vxg_agent" });
    expect(JSON.stringify(options.tokens)).not.toContain("vxg_plain");
    expect(options.tokens.map((t) => t.scopes)).toEqual([
      ["tts", "voices", "jobs", "admin", "storyforge", "metrics"],
      ["agent"],
    ]);
  });

  it("maps TLS files to each port and refuses half-configured TLS, naming every problem", () => {
    const options = optionsFrom({
      VOXGATE_TLS_CERT_FILE: "/c/api.crt",
      VOXGATE_TLS_KEY_FILE: "/c/api.key",
      VOXGATE_AGENT_TLS_CERT_FILE: "/c/agents.crt",
      VOXGATE_AGENT_TLS_KEY_FILE: "/c/agents.key",
      VOXGATE_AGENT_CLIENT_CA_FILE: "/c/ca.crt",
      VOXGATE_AGENT_CERT_MATCH_ID: "yes",
    });
    expect(options.public.tls).toEqual({ certFile: "/c/api.crt", keyFile: "/c/api.key" });
    expect(options.agent.tls).toEqual({
      certFile: "/c/agents.crt",
      keyFile: "/c/agents.key",
      clientCaFile: "/c/ca.crt",
      requireAgentIdentity: true,
    });
    expect(optionsFrom({}).public.tls).toBeUndefined();
    expect(() =>
      optionsFrom({
        VOXGATE_TLS_CERT_FILE: "/c/api.crt",
        VOXGATE_AGENT_CLIENT_CA_FILE: "/c/ca.crt",
        VOXGATE_AGENT_CERT_MATCH_ID: "true",
      }),
    ).toThrow(
      /tlsCertFile and tlsKeyFile go together[\s\S]*agentClientCaFile needs TLS on the agent port/,
    );
  });
});
