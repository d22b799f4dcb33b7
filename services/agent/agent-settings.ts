import { hostname } from "node:os";
import { z } from "zod";
import { intSetting, logLevelSpec, setting, stringSetting } from "../config/settings.js";
import { ENGINE_KINDS, type EngineKind } from "../engines/engine-factory.js";

/** A host-derived agent id: stable for the life of the process, distinct between processes. */
export function defaultAgentId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, "-")
      .slice(0, 48) || "agent";
  return `${host}-${process.pid}`;
}

/** Every agent setting; `voxgate agent --help` prints this table. */
export const agentSettings = {
  gateway: setting({
    key: "gateway",
    flag: "gateway",
    env: "VOXGATE_GATEWAY",
    description: "gateway agent port to dial, host:port",
    schema: z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, {
      error: "must be host:port, e.g. gateway.example.com:8081",
    }),
    defaultValue: "127.0.0.1:8081",
  }),
  token: setting({
    key: "token",
    flag: "token",
    env: "VOXGATE_AGENT_TOKEN",
    description: "agent token (scope agent); prefer the variable, flags show in ps",
    schema: stringSetting,
    defaultValue: "",
  }),
  id: setting({
    key: "id",
    flag: "id",
    env: "VOXGATE_AGENT_ID",
    description: "agent id, stable across reconnects (default: host name and pid)",
    schema: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
      error: "1-64 letters, digits, '.', '_' or '-'",
    }),
    defaultValue: "",
  }),
  slots: setting({
    key: "slots",
    flag: "slots",
    env: "VOXGATE_AGENT_SLOTS",
    description: "calls this agent runs at once (also the number of engine workers)",
    schema: intSetting(1, 256),
    defaultValue: 2,
  }),
  priority: setting({
    key: "priority",
    flag: "priority",
    env: "VOXGATE_AGENT_PRIORITY",
    description: "routing priority; lower is preferred",
    schema: intSetting(-1000, 1000),
    defaultValue: 0,
  }),
  engine: setting({
    key: "engine",
    flag: "engine",
    env: "VOXGATE_AGENT_ENGINE",
    description: `engine this agent hosts: ${ENGINE_KINDS.join(", ")}`,
    schema: z.enum(ENGINE_KINDS),
    defaultValue: "espeak" as EngineKind,
  }),
  drainTimeoutMs: setting({
    key: "drainTimeoutMs",
    flag: "drain-timeout-ms",
    env: "VOXGATE_AGENT_DRAIN_TIMEOUT_MS",
    description: "longest wait for running calls on SIGTERM before cancelling them, in ms",
    schema: intSetting(0, 3_600_000),
    defaultValue: 30_000,
  }),
  gatewayKeepaliveMs: setting({
    key: "gatewayKeepaliveMs",
    flag: "gateway-keepalive-ms",
    env: "VOXGATE_GATEWAY_KEEPALIVE_MS",
    description:
      "interval of keepalive pings to the gateway, in ms (the gateway accepts one per 5 s at most)",
    schema: intSetting(5000, 3_600_000),
    defaultValue: 10_000,
  }),
  gatewayKeepaliveTimeoutMs: setting({
    key: "gatewayKeepaliveTimeoutMs",
    flag: "gateway-keepalive-timeout-ms",
    env: "VOXGATE_GATEWAY_KEEPALIVE_TIMEOUT_MS",
    description: "time the gateway has to answer a ping before the agent reconnects, in ms",
    schema: intSetting(100, 600_000),
    defaultValue: 5000,
  }),
  logLevel: logLevelSpec,
};
