import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { hashToken } from "../../services/auth/token-codec.js";
import { createTestIo } from "../testing/test-io.js";
import type { CliCommand } from "./cli-command.js";
import { CliError, CliUsageError } from "./cli-errors.js";
import { commands } from "./commands/index.js";
import { main } from "./main.js";

const packageJson = JSON.parse(
  await readFile(new URL("../../package.json", import.meta.url), "utf8"),
) as { version: string };

describe("main", () => {
  it("lists every command with --help, -h and help, exit 0", async () => {
    for (const flag of ["--help", "-h", "help"]) {
      const t = createTestIo();
      expect(await main([flag], t.io)).toBe(0);
      for (const command of commands) {
        expect(t.stdout()).toMatch(
          new RegExp(`^  ${command.name} +${escapeRegExp(command.summary)}$`, "m"),
        );
      }
      expect(t.stdout()).toContain("Usage: voxgate <command> [flags]");
      expect(t.stderr()).toBe("");
    }
  });

  it("prints help to stderr and exits 2 without a command", async () => {
    const t = createTestIo();
    expect(await main([], t.io)).toBe(2);
    expect(t.stdout()).toBe("");
    expect(t.stderr()).toContain("Commands:\n  speak");
  });

  it("rejects an unknown command with the command list, exit 2", async () => {
    const t = createTestIo();
    expect(await main(["speek", "hello"], t.io)).toBe(2);
    expect(t.stderr()).toMatch(/^voxgate: unknown command "speek"\n/);
    for (const command of commands) expect(t.stderr()).toContain(`  ${command.name} `);
    expect(t.stdout()).toBe("");

    const flag = createTestIo();
    expect(await main(["--verbose"], flag.io)).toBe(2);
    expect(flag.stderr()).toMatch(/^voxgate: unknown flag "--verbose"/);
  });

  it("prints the package version", async () => {
    const t = createTestIo();
    expect(await main(["--version"], t.io)).toBe(0);
    expect(t.stdout()).toBe(`voxgate ${packageJson.version}\n`);
  });

  it("prints each command's usage for <command> --help, -h and help <command>", async () => {
    for (const command of commands) {
      for (const argv of [
        [command.name, "--help"],
        [command.name, "x", "-h"],
        ["help", command.name],
      ]) {
        const t = createTestIo();
        expect(await main(argv, t.io)).toBe(0);
        expect(t.stdout()).toBe(
          command.usage.endsWith("\n") ? command.usage : `${command.usage}\n`,
        );
        expect(t.stdout()).toMatch(/^Usage: voxgate /);
      }
    }
    const t = createTestIo();
    expect(await main(["help", "nope"], t.io)).toBe(2);
  });

  it("passes --help after -- on to the command as an argument", async () => {
    const seen: string[][] = [];
    const echo = fakeCommand("echo", async (argv) => {
      seen.push(argv);
      return 0;
    });
    const t = createTestIo();
    expect(await main(["echo", "--", "--help"], t.io, [echo])).toBe(0);
    expect(seen).toEqual([["--", "--help"]]);
  });

  it("has unique, lowercase command names with usage and summary", () => {
    const names = commands.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const command of commands) {
      expect(command.name).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(command.summary).not.toBe("");
      expect(command.usage).toContain(`voxgate ${command.name}`);
    }
  });

  it("maps usage errors to exit 2 and failures to exit 1, with stacks only in debug mode", async () => {
    const registry = [
      fakeCommand("usage", async () => {
        throw new CliUsageError("--x must be a number");
      }),
      fakeCommand("fails", async () => {
        throw new CliError("cannot write a.wav: permission denied");
      }),
      fakeCommand("crash", async () => {
        throw new TypeError("undefined is not a function");
      }),
    ];
    const usage = createTestIo();
    expect(await main(["usage"], usage.io, registry)).toBe(2);
    expect(usage.stderr()).toBe(
      'voxgate usage: --x must be a number\nRun "voxgate usage --help" for usage.\n',
    );

    const fails = createTestIo();
    expect(await main(["fails"], fails.io, registry)).toBe(1);
    expect(fails.stderr()).toBe("voxgate fails: cannot write a.wav: permission denied\n");

    const crash = createTestIo();
    expect(await main(["crash"], crash.io, registry)).toBe(1);
    expect(crash.stderr()).toBe("voxgate crash: undefined is not a function\n");

    const debug = createTestIo({ env: { VOXGATE_DEBUG: "1" } });
    expect(await main(["crash"], debug.io, registry)).toBe(1);
    expect(debug.stderr()).toMatch(
      /^voxgate crash: undefined is not a function\nTypeError: .*\n +at /,
    );
  });

  it("reports an interrupted command with exit 130", async () => {
    const interrupt = new AbortController();
    const stops = fakeCommand("wait", async (_argv, io) => {
      interrupt.abort();
      throw new Error(`stopped: ${String(io.signal?.aborted)}`);
    });
    const t = createTestIo({ signal: interrupt.signal });
    expect(await main(["wait"], t.io, [stops])).toBe(130);
    expect(t.stderr()).toBe("voxgate wait: interrupted\n");
  });
});

describe("voxgate token create", () => {
  it("prints a fresh token and a config entry whose hash matches it", async () => {
    const t = createTestIo();
    expect(
      await main(["token", "create", "--scopes", "tts, voices,tts", "--name", "ci"], t.io),
    ).toBe(0);
    const [token = "", ...rest] = t.stdout().split("\n");
    expect(token).toMatch(/^vxg_[A-Za-z0-9_-]{43}$/);
    const entry = JSON.parse(rest.join("\n")) as unknown;
    expect(entry).toEqual({ name: "ci", sha256: hashToken(token), scopes: ["tts", "voices"] });
    expect(t.stderr()).toContain("stores only the SHA-256 hash");
    expect(t.stderr()).not.toContain(token);

    const again = createTestIo();
    await main(["token", "create", "--scopes", "tts"], again.io);
    expect(again.stdout().split("\n")[0]).not.toBe(token);
  });

  it("prints one JSON object with --json and names tokens after their hash by default", async () => {
    const t = createTestIo();
    expect(await main(["token", "create", "--scopes", "agent", "--json"], t.io)).toBe(0);
    const { token, entry } = JSON.parse(t.stdout()) as {
      token: string;
      entry: { name: string; sha256: string; scopes: string[] };
    };
    expect(entry.sha256).toBe(hashToken(token));
    expect(entry.name).toBe(`token-${entry.sha256.slice(0, 8)}`);
    expect(entry.scopes).toEqual(["agent"]);
  });

  it.each([
    [["token"], /missing subcommand/],
    [["token", "revoke"], /unknown subcommand "revoke"/],
    [["token", "create"], /--scopes is required/],
    [["token", "create", "--scopes", ","], /--scopes is empty/],
    [
      ["token", "create", "--scopes", "tts,root"],
      /unknown scope "root": valid scopes are tts, voices, jobs, admin, storyforge, metrics, agent/,
    ],
    [["token", "create", "--scopes", "agent,tts"], /agent tokens are for the agent port only/],
    [["token", "create", "--scopes", "tts", "--name", "has space"], /--name "has space" must be/],
    [["token", "create", "--scopes", "tts", "extra"], /Unexpected argument 'extra'/],
  ])("refuses %j with exit 2 and prints no token", async (argv, message) => {
    const t = createTestIo();
    expect(await main(argv, t.io)).toBe(2);
    expect(t.stderr()).toMatch(message);
    expect(t.stdout()).toBe("");
  });
});

function fakeCommand(name: string, run: CliCommand["run"]): CliCommand {
  return { name, summary: `fake ${name}`, usage: `Usage: voxgate ${name}\n`, run };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
