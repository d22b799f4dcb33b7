import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { agentSettings } from "../agent/agent-settings.js";
import { gatewaySettings } from "../gateway/gateway-settings.js";

// Issue 17 item 8: a setting's default lives in its settings table only. This scans component
// sources for a second, literal default (a number or boolean) of an option a setting controls: `name ?? 123`, a
// `name: 123` line inside an exported `default…`/`DEFAULT_…` object, or `@default 123` on a `name`
// field. An option a setting controls is one named like a setting, one gateway-options.ts maps a
// setting to, or (in its own file) a field whose JSDoc names a setting's variable (`VOXGATE_…`).

const root = join(import.meta.dirname, "..");

/** Setting keys plus the option names gateway-options.ts maps them to. */
function controlledNames(): Set<string> {
  const names = new Set([...Object.keys(gatewaySettings), ...Object.keys(agentSettings)]);
  const mapping = readFileSync(join(root, "gateway/gateway-options.ts"), "utf8");
  for (const m of mapping.matchAll(/(\w+): settings\.(\w+)\b/g)) names.add(m[1] as string);
  return names;
}

/** Environment variables of every gateway and agent setting. */
function settingVariables(): Set<string> {
  return new Set(
    [...Object.values(gatewaySettings), ...Object.values(agentSettings)].map((s) => s.env),
  );
}

/**
 * Fields of `source` whose JSDoc names one of `variables`: options that carry a setting under a
 * name of their own (a job runner's `leaseMs` is VOXGATE_JOB_LEASE_MS).
 */
function fieldsNamingASetting(source: string, variables: ReadonlySet<string>): Set<string> {
  const fields = new Set<string>();
  for (const m of source.matchAll(
    /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*\n\s+(?:readonly\s+)?(\w+)\??:/g,
  )) {
    const named = [...(m[1] as string).matchAll(/VOXGATE_\w+/g)].some((v) => variables.has(v[0]));
    if (named) fields.add(m[2] as string);
  }
  return fields;
}

const NUMBER = String.raw`(?:-?\d[\d_]*(?:\s*\*\s*\d[\d_]*)*|"[^"]*"|true|false)`;

/**
 * Lines of `source` that re-declare a literal default of one of `names`, as `line: text`.
 */
function findRedeclaredDefaults(source: string, names: ReadonlySet<string>): string[] {
  const found: string[] = [];
  const lines = source.split("\n");
  let inDefaults = false;
  let pendingDefault = false;
  for (const [i, line] of lines.entries()) {
    const hit = (name: string) => {
      if (names.has(name)) found.push(`${i + 1}: ${name}: ${line.trim()}`);
    };
    for (const m of line.matchAll(new RegExp(String.raw`\b(\w+)\s*\?\?\s*${NUMBER}\b`, "g"))) {
      hit(m[1] as string);
    }
    if (/^export const (?:default\w+|DEFAULT_\w+)\b.*=\s*\{\s*$/.test(line)) inDefaults = true;
    else if (inDefaults && /^\};?\s*$/.test(line)) inDefaults = false;
    else if (inDefaults) {
      const m = line.match(new RegExp(String.raw`^\s+(\w+):\s*${NUMBER},`));
      if (m) hit(m[1] as string);
    }
    if (new RegExp(String.raw`@default\s+${NUMBER}\b`).test(line)) pendingDefault = true;
    const field = line.match(/^\s+(?:readonly\s+)?(\w+)\??:\s/);
    if (field && !line.includes("/*") && !line.trimStart().startsWith("*")) {
      if (pendingDefault) hit(field[1] as string);
      pendingDefault = false;
    }
  }
  return found;
}

/** Component sources: every .ts under services/ except settings tables and tests. */
function componentFiles(dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return componentFiles(path);
    return e.name.endsWith(".ts") &&
      !e.name.endsWith(".test.ts") &&
      !e.name.endsWith("-settings.ts")
      ? [path]
      : [];
  });
}

describe("one declaration per setting", () => {
  it("no component re-declares a gateway or agent setting's default", () => {
    const names = controlledNames();
    const variables = settingVariables();
    const found = componentFiles().flatMap((file) => {
      const source = readFileSync(file, "utf8");
      const own = new Set([...names, ...fieldsNamingASetting(source, variables)]);
      return findRedeclaredDefaults(source, own).map(
        (hit) => `services/${relative(root, file)}:${hit}`,
      );
    });
    expect(found).toEqual([]);
  });

  it("declares a variable both the gateway and the agent read once (same rule, same default)", () => {
    const agentByVariable = new Map(Object.values(agentSettings).map((s) => [s.env, s]));
    const shared = Object.values(gatewaySettings).flatMap((gateway) => {
      const agent = agentByVariable.get(gateway.env);
      return agent ? [{ gateway, agent }] : [];
    });
    // VOXGATE_AGENT_TOKEN, VOXGATE_LOG_LEVEL and VOXGATE_LOG_FORMAT today.
    expect(shared.length).toBeGreaterThanOrEqual(3);
    for (const { gateway, agent } of shared) {
      expect(agent.schema, gateway.env).toBe(gateway.schema);
      expect(agent.defaultValue, gateway.env).toBe(gateway.defaultValue);
    }
  });

  it("finds each form of a re-declared default in a synthetic source", () => {
    const source = [
      "export interface Limits {",
      "  /** Open connections. @default 4096 */",
      "  maxConnections: number;",
      "  /** Open connections. @default setting maxConnections */",
      "  maxStreams: number;",
      "}",
      "export const defaultLimits: Limits = {",
      "  maxConnections: 4 * 1024,",
      "  maxStreams: gatewaySettings.maxStreams.defaultValue,",
      "};",
      "const drain = options.drainTimeoutMs ?? 30_000;",
      "const other = options.notASetting ?? 5;",
      "const ready = options.readyNeedsBackend ?? true;",
    ].join("\n");
    expect(
      findRedeclaredDefaults(
        source,
        new Set(["maxConnections", "maxStreams", "drainTimeoutMs", "readyNeedsBackend"]),
      ),
    ).toEqual([
      "3: maxConnections: maxConnections: number;",
      "8: maxConnections: maxConnections: 4 * 1024,",
      "11: drainTimeoutMs: const drain = options.drainTimeoutMs ?? 30_000;",
      "13: readyNeedsBackend: const ready = options.readyNeedsBackend ?? true;",
    ]);
  });

  it("finds a default of a field whose JSDoc names a setting's variable, in its own file", () => {
    const source = [
      "export interface RunnerLimits {",
      "  /** Length of a lease, in ms (VOXGATE_JOB_LEASE_MS). @default 30_000 */",
      "  leaseMs: number;",
      "  /** Deliveries sent at once (not a setting). @default 4 */",
      "  concurrency: number;",
      "}",
      "export const DEFAULT_RUNNER_LIMITS: RunnerLimits = {",
      "  leaseMs: 30_000,",
      "  concurrency: 4,",
      "};",
      "const poll = options.leaseMs ?? 1000;",
      "const other = options.concurrency ?? 4;",
    ].join("\n");
    const fields = fieldsNamingASetting(source, settingVariables());
    expect([...fields]).toEqual(["leaseMs"]);
    expect(findRedeclaredDefaults(source, fields)).toEqual([
      "3: leaseMs: leaseMs: number;",
      "8: leaseMs: leaseMs: 30_000,",
      "11: leaseMs: const poll = options.leaseMs ?? 1000;",
    ]);
  });
});
