import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { agentSettings } from "../agent/agent-settings.js";
import { hashToken } from "../auth/token-codec.js";
import { gatewaySettings } from "../gateway/gateway-settings.js";
import {
  describeSettings,
  isSettingsError,
  loadSettings,
  type SettingSources,
  SettingsError,
} from "./settings.js";

const dir = mkdtempSync(join(tmpdir(), "voxgate-settings-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
/** Writes a config file and returns its path. */
function configFile(content: unknown): string {
  const path = join(dir, `config-${fileCount++}.json`);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

/** Runs `load` and returns the SettingsError it must throw. */
function settingsErrorOf(load: () => unknown): SettingsError {
  try {
    load();
  } catch (err) {
    expect(isSettingsError(err), `expected a SettingsError, got ${String(err)}`).toBe(true);
    return err as SettingsError;
  }
  throw new Error("expected a SettingsError, but the settings loaded");
}

const gateway = (sources: Partial<SettingSources>) =>
  loadSettings(gatewaySettings, { argv: [], env: {}, ...sources });

describe("loadSettings precedence", () => {
  it("takes defaults when nothing is set", () => {
    const settings = gateway({});
    expect(settings.port).toBe(8080);
    expect(settings.host).toBe("127.0.0.1");
    expect(settings.tokens).toEqual([]);
    expect(settings.logLevel).toBe("info");
    expect(settings.maxTextChars).toBe(5000);
    expect(settings.config).toBe("");
    expect(settings.positionals).toEqual([]);
  });

  it("prefers flag over env over file over default, per setting", () => {
    const path = configFile({ port: 1001, agentPort: 1002, maxTextChars: 1003, host: "10.0.0.1" });
    const settings = gateway({
      argv: ["--config", path, "--port", "3001"],
      env: { VOXGATE_PORT: "2001", VOXGATE_AGENT_PORT: "2002" },
    });
    expect(settings.port).toBe(3001); // flag beats env and file
    expect(settings.agentPort).toBe(2002); // env beats file
    expect(settings.maxTextChars).toBe(1003); // file beats default
    expect(settings.host).toBe("10.0.0.1");
    expect(settings.maxClipBytes).toBe(64 * 1024 * 1024); // default
    expect(settings.config).toBe(path);
  });

  it("finds the config file through VOXGATE_CONFIG, and --config wins over it", () => {
    const fromEnv = configFile({ port: 4001 });
    const fromFlag = configFile({ port: 4002 });
    expect(gateway({ env: { VOXGATE_CONFIG: fromEnv } }).port).toBe(4001);
    expect(gateway({ argv: [`--config=${fromFlag}`], env: { VOXGATE_CONFIG: fromEnv } }).port).toBe(
      4002,
    );
  });

  it("treats an empty environment variable as unset", () => {
    const path = configFile({ port: 5001 });
    expect(gateway({ argv: ["--config", path], env: { VOXGATE_PORT: "" } }).port).toBe(5001);
    expect(gateway({ env: { VOXGATE_PORT: "" } }).port).toBe(8080);
  });

  it("coerces numeric strings and keeps positionals", () => {
    const settings = gateway({ argv: ["extra", "--port", "0", "more"] });
    expect(settings.port).toBe(0);
    expect(settings.positionals).toEqual(["extra", "more"]);
  });

  it("reads the same setting from any source with the same rules", () => {
    const path = configFile({ logLevel: "debug" });
    expect(gateway({ argv: ["--config", path] }).logLevel).toBe("debug");
    expect(gateway({ env: { VOXGATE_LOG_LEVEL: "warn" } }).logLevel).toBe("warn");
    expect(gateway({ argv: ["--log-level", "silent"] }).logLevel).toBe("silent");
  });
});

describe("loadSettings config file", () => {
  it.each([
    ["an array", "[1, 2]"],
    ["a string", '"port"'],
    ["null", "null"],
    ["a number", "8080"],
  ])("refuses a file whose top level is %s", (_case, text) => {
    const path = configFile(text);
    const error = settingsErrorOf(() => gateway({ argv: ["--config", path] }));
    expect(error.message).toContain(path);
    expect(error.message).toContain("the top level must be an object");
  });

  it("refuses a file that is not JSON, naming the file", () => {
    const path = configFile("{ port: 8080 ");
    const error = settingsErrorOf(() => gateway({ argv: ["--config", path] }));
    expect(error.message).toMatch(new RegExp(`^config file ${path} is not valid JSON: `));
  });

  it("refuses a file that cannot be read, naming the file", () => {
    const path = join(dir, "does-not-exist.json");
    const error = settingsErrorOf(() => gateway({ env: { VOXGATE_CONFIG: path } }));
    expect(error.message).toContain(`cannot read config file ${path}`);
  });

  it("reports every unknown key of the file", () => {
    const path = configFile({ port: 1, prot: 2, agent_port: 3 });
    const error = settingsErrorOf(() => gateway({ argv: ["--config", path] }));
    expect(error.message).toContain(`config file ${path}: unknown key "prot"`);
    expect(error.message).toContain(`config file ${path}: unknown key "agent_port"`);
    expect(error.message).not.toContain('unknown key "port"');
  });

  it("takes tokens from the file as a JSON array", () => {
    const sha256 = hashToken("vxg_file");
    const path = configFile({ tokens: [{ name: "from-file", sha256, scopes: ["tts", "jobs"] }] });
    expect(gateway({ argv: ["--config", path] }).tokens).toEqual([
      { name: "from-file", sha256, scopes: ["tts", "jobs"] },
    ]);
  });
});

describe("loadSettings errors", () => {
  it("reports several bad values together in one SettingsError naming each setting and source", () => {
    const path = configFile({ agentPort: "eighty", logLevel: "loud", mystery: true });
    const error = settingsErrorOf(() =>
      gateway({
        argv: ["--config", path, "--port", "70000"],
        env: { VOXGATE_MAX_TEXT_CHARS: "0", VOXGATE_HEARTBEAT_MISS_LIMIT: "2.5" },
      }),
    );
    expect(error).toBeInstanceOf(SettingsError);
    expect(error.name).toBe("SettingsError");
    const lines = error.message.split("\n");
    expect(lines[0]).toBe("invalid settings:");
    expect(lines.slice(1).sort()).toEqual(
      [
        `  - config file ${path}: unknown key "mystery"`,
        "  - port from --port: must be at most 65535",
        `  - agentPort from "agentPort" in ${path}: must be a number`,
        `  - logLevel from "logLevel" in ${path}: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"`,
        "  - maxTextChars from VOXGATE_MAX_TEXT_CHARS: must be at least 1",
        "  - heartbeatMissLimit from VOXGATE_HEARTBEAT_MISS_LIMIT: must be a whole number",
      ].sort(),
    );
  });

  it("names the env source when the env value is bad even if the file is fine", () => {
    const path = configFile({ port: 9000 });
    const error = settingsErrorOf(() =>
      gateway({ argv: ["--config", path], env: { VOXGATE_PORT: "-1" } }),
    );
    expect(error.message).toBe("invalid settings:\n  - port from VOXGATE_PORT: must be at least 0");
  });

  it("refuses unknown flags", () => {
    const error = settingsErrorOf(() => gateway({ argv: ["--prot", "8080"] }));
    expect(error.message).toContain("--prot");
  });

  it("offers no flag for secrets, so tokens cannot leak into ps output", () => {
    for (const flag of ["--token", "--client-token", "--agent-token", "--tokens"]) {
      const error = settingsErrorOf(() => gateway({ argv: [flag, "vxg_secret"] }));
      expect(error.message).toContain(flag);
    }
    expect(gateway({ env: { VOXGATE_TOKEN: "vxg_secret" } }).clientToken).toBe("vxg_secret");
  });

  it("refuses a flag without its value", () => {
    const error = settingsErrorOf(() => gateway({ argv: ["--port"] }));
    expect(error.message).toContain("--port");
  });

  it("refuses a blank --port instead of reading it as 0", () => {
    const error = settingsErrorOf(() => gateway({ argv: ["--port="] }));
    expect(error.message).toContain("port from --port");
  });

  it("refuses a whitespace-only VOXGATE_PORT instead of reading it as 0", () => {
    const error = settingsErrorOf(() => gateway({ env: { VOXGATE_PORT: " " } }));
    expect(error.message).toContain("port from VOXGATE_PORT");
  });
});

describe("gateway tokens setting", () => {
  const sha256 = hashToken("vxg_env");

  it("parses VOXGATE_TOKENS_JSON", () => {
    const json = JSON.stringify([
      { name: "cloud", sha256, scopes: ["tts", "voices"] },
      { name: "gpu", sha256: hashToken("vxg_gpu"), scopes: ["agent"] },
    ]);
    const settings = gateway({ env: { VOXGATE_TOKENS_JSON: json } });
    expect(settings.tokens.map((t) => [t.name, t.scopes])).toEqual([
      ["cloud", ["tts", "voices"]],
      ["gpu", ["agent"]],
    ]);
  });

  it("refuses a token mixing the agent scope with client scopes", () => {
    const json = JSON.stringify([{ name: "mixed", sha256, scopes: ["agent", "tts"] }]);
    const error = settingsErrorOf(() => gateway({ env: { VOXGATE_TOKENS_JSON: json } }));
    expect(error.message).toContain("tokens from VOXGATE_TOKENS_JSON");
    expect(error.message).toContain(
      "an agent token carries the agent scope only (client and agent tokens stay apart)",
    );
  });

  it("takes a priority range on agent tokens only, min not above max", () => {
    const ok = JSON.stringify([
      { name: "pool", sha256, scopes: ["agent"], agentMinPriority: 500, agentMaxPriority: 800 },
    ]);
    expect(gateway({ env: { VOXGATE_TOKENS_JSON: ok } }).tokens[0]).toMatchObject({
      agentMinPriority: 500,
      agentMaxPriority: 800,
    });
    const onClient = JSON.stringify([
      { name: "cloud", sha256, scopes: ["tts"], agentMinPriority: 500 },
    ]);
    expect(
      settingsErrorOf(() => gateway({ env: { VOXGATE_TOKENS_JSON: onClient } })).message,
    ).toContain("agentMinPriority/agentMaxPriority belong on agent tokens only");
    const reversed = JSON.stringify([
      { name: "pool", sha256, scopes: ["agent"], agentMinPriority: 9, agentMaxPriority: 1 },
    ]);
    expect(
      settingsErrorOf(() => gateway({ env: { VOXGATE_TOKENS_JSON: reversed } })).message,
    ).toContain("agentMinPriority must not exceed agentMaxPriority");
  });

  it.each([
    ["an unknown scope", [{ name: "x", sha256, scopes: ["root"] }]],
    ["no scope", [{ name: "x", sha256, scopes: [] }]],
    ["an uppercase hash", [{ name: "x", sha256: sha256.toUpperCase(), scopes: ["tts"] }]],
    ["an empty name", [{ name: "", sha256, scopes: ["tts"] }]],
    ["an object instead of an array", { name: "x", sha256, scopes: ["tts"] }],
  ])("refuses an entry with %s", (_case, value) => {
    const error = settingsErrorOf(() =>
      gateway({ env: { VOXGATE_TOKENS_JSON: JSON.stringify(value) } }),
    );
    expect(error.message).toContain("tokens from VOXGATE_TOKENS_JSON");
  });

  it("reports a bad hash with the rule", () => {
    const json = JSON.stringify([{ name: "x", sha256: "abc", scopes: ["tts"] }]);
    const error = settingsErrorOf(() => gateway({ env: { VOXGATE_TOKENS_JSON: json } }));
    expect(error.message).toContain("sha256 must be 64 lowercase hex characters");
  });

  it("reports VOXGATE_TOKENS_JSON that is not JSON as a SettingsError naming it", () => {
    const error = settingsErrorOf(() =>
      gateway({ env: { VOXGATE_TOKENS_JSON: "[{name: oops}]", VOXGATE_PORT: "99999" } }),
    );
    expect(error.message).toContain("tokens from VOXGATE_TOKENS_JSON");
    expect(error.message).toContain("port from VOXGATE_PORT");
  });
});

describe("agent settings", () => {
  const agent = (sources: Partial<SettingSources>) =>
    loadSettings(agentSettings, { argv: [], env: {}, ...sources });

  it("takes the gateway address, token and slots from their sources", () => {
    const settings = agent({
      argv: ["--gateway", "gpu-gw.example.com:8081", "--slots", "4"],
      env: { VOXGATE_AGENT_TOKEN: "vxg_agent", VOXGATE_AGENT_ID: "box-1" },
    });
    expect(settings.gateway).toBe("gpu-gw.example.com:8081");
    expect(settings.token).toBe("vxg_agent");
    expect(settings.id).toBe("box-1");
    expect(settings.slots).toBe(4);
    expect(agent({ argv: ["--gateway", "[::1]:9000"] }).gateway).toBe("[::1]:9000");
    expect(agent({ argv: ["--gateway", "https://gw.example.com:8443"] }).gateway).toBe(
      "https://gw.example.com:8443",
    );
  });

  it("reports a bad gateway address, id and slot count together", () => {
    const error = settingsErrorOf(() =>
      agent({
        argv: ["--gateway", "grpcs://gw:8081"],
        env: { VOXGATE_AGENT_ID: "-bad id", VOXGATE_AGENT_SLOTS: "0" },
      }),
    );
    expect(error.message).toContain(
      "gateway from --gateway: must be https://HOST:PORT (TLS), http://HOST:PORT or HOST:PORT (cleartext)",
    );
    expect(error.message).toContain("id from VOXGATE_AGENT_ID: 1-64 letters, digits");
    expect(error.message).toContain("slots from VOXGATE_AGENT_SLOTS: must be at least 1");
  });

  it("does not know gateway-only flags", () => {
    const error = settingsErrorOf(() => agent({ argv: ["--max-request-bytes", "1000"] }));
    expect(error.message).toContain("--max-request-bytes");
  });
});

describe("describeSettings", () => {
  it("lists every setting with its flag, variable, key and default", () => {
    const text = describeSettings(gatewaySettings);
    const lines = text.split("\n");
    expect(lines).toHaveLength(Object.keys(gatewaySettings).length + 1);
    expect(lines[0]).toMatch(/^flag\s+env\s+config key\s+default\s+meaning$/);
    const port = lines.find((l) => l.includes("VOXGATE_PORT "));
    expect(port).toMatch(/^--port\s+VOXGATE_PORT\s+port\s+8080\s+public API port/);
    const tokens = lines.find((l) => l.includes("VOXGATE_TOKENS_JSON"));
    expect(tokens).toMatch(/^\s+VOXGATE_TOKENS_JSON\s+tokens\s+\[\]/);
  });
});
