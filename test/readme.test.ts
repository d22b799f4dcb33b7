/**
 * Keeps the README true: its two set-up commands exist as npm scripts, and every setting the
 * gateway and agent accept is documented.
 */
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { agentSettings } from "../services/agent/agent-settings.js";
import { gatewaySettings } from "../services/gateway/gateway-settings.js";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  scripts: Record<string, string>;
};

describe("README", () => {
  it("shows the two set-up commands, backed by npm scripts", () => {
    expect(readme).toContain("npm ci && npm start");
    expect(readme).toContain("npm ci && npm test");
    expect(pkg.scripts.start).toBeTruthy();
    expect(pkg.scripts.test).toBeTruthy();
  });

  it("links only to files inside the repository, and each of them exists", () => {
    const root = new URL("../", import.meta.url);
    const targets = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
      .map((match) => match[1] as string)
      .filter((target) => !/^[a-z]+:/i.test(target));
    expect(targets.length).toBeGreaterThan(3);
    for (const target of targets) {
      const resolved = new URL(target, root);
      expect(resolved.href.startsWith(root.href), `${target} leaves the repository`).toBe(true);
      expect(existsSync(resolved), `${target} does not exist`).toBe(true);
    }
  });

  it("lists in its CLI table every --format value `voxgate speak` accepts, and no other", () => {
    // Issue 17 item 10: the speak row's --format list had fallen behind the command.
    const source = readFileSync(
      new URL("../clients/cli/commands/speak.ts", import.meta.url),
      "utf8",
    );
    const accepted = source.match(/parseChoiceFlag\("format", values\.format, \[([^\]]*)\]\)/)?.[1];
    expect(accepted, "speak.ts parses --format with parseChoiceFlag").toBeTruthy();
    const formats = [...(accepted as string).matchAll(/"(\w+)"/g)].map((m) => m[1]).sort();
    const row = readme.split("\n").find((line) => line.startsWith("| `speak "));
    const listed = row
      ?.match(/--format ([\w\\|]+)\]/)?.[1]
      ?.split("\\|")
      .sort();
    expect(listed).toEqual(formats);
  });

  for (const [name, table] of Object.entries({ gateway: gatewaySettings, agent: agentSettings })) {
    it(`documents every ${name} setting with its variable, flag and default`, () => {
      for (const spec of Object.values(table)) {
        const shown = JSON.stringify(spec.defaultValue);
        const rows = readme.split("\n").filter((line) => line.startsWith(`| \`${spec.env}\``));
        const documented = rows.some(
          (row) =>
            row.includes(`\`${spec.key}\``) &&
            (!spec.flag || row.includes(`\`--${spec.flag}\``)) &&
            (shown === '""' || row.includes(shown)),
        );
        expect(
          documented,
          `README documents ${spec.env} (--${spec.flag}, ${spec.key}, ${shown})`,
        ).toBe(true);
      }
    });
  }
});
