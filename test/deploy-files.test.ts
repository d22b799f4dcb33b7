/**
 * The deployment files under deploy/ are what README "Deploying" tells people to install: the
 * systemd units pass `systemd-analyze verify`, and the example gateway config and agent
 * environment load as the gateway and agent would load them.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { agentSettings } from "../services/agent/agent-settings.js";
import { loadSettings } from "../services/config/settings.js";
import { gatewayOptionsFromSettings } from "../services/gateway/gateway-options.js";
import { gatewaySettings } from "../services/gateway/gateway-settings.js";

const run = promisify(execFile);
const deploy = (name: string) => fileURLToPath(new URL(`../deploy/${name}`, import.meta.url));

/** Reads a systemd EnvironmentFile: KEY=value lines, # comments. */
function readEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) env[match[1] as string] = match[2] as string;
  }
  return env;
}

describe("deploy/", () => {
  it("has systemd units that systemd-analyze verify accepts", async () => {
    const units = ["voxgate-gateway.service", "voxgate-agent.service"].map((u) =>
      deploy(`systemd/${u}`),
    );
    // Exit 0 and nothing on stderr: verify reports unknown directives and bad values there.
    const { stderr } = await run("systemd-analyze", ["verify", ...units]);
    expect(stderr).toBe("");
  });

  it("has an example gateway config that the gateway loads", () => {
    const settings = loadSettings(gatewaySettings, {
      argv: [],
      env: { VOXGATE_CONFIG: deploy("gateway.example.json") },
    });
    expect(settings.host).toBe("0.0.0.0");
    expect(settings.tokens.map((t) => t.name)).toEqual(["storyforge", "gpu-hosts"]);
    const options = gatewayOptionsFromSettings(settings, pino({ level: "silent" }), {});
    expect(options.public.port).toBe(8080);
  });

  it("has an example agent environment that the agent loads", () => {
    const settings = loadSettings(agentSettings, {
      argv: [],
      env: readEnvFile(deploy("agent.example.env")),
    });
    expect(settings.gateway).toBe("gateway.example.com:8081");
    expect(settings.id).toBe("tinybox");
    expect(settings.slots).toBe(2);
  });
});
