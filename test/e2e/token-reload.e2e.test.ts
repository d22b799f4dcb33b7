/**
 * Hot reload of tokens with real processes: the gateway reads a tokens file (VOXGATE_TOKENS_FILE)
 * again when it changes (polled) and on SIGHUP. A removed client token is refused on its next
 * call, an agent whose token was removed loses its session at once and cannot rejoin, and an
 * invalid file is logged while the previous tokens stay in force.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { generateToken, hashToken } from "../../services/auth/token-codec.js";
import type { TokenEntry } from "../../services/auth/token-store.js";
import type { LogLine } from "../helpers/voxgate-process.js";
import { waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

const dir = mkdtempSync(join(tmpdir(), "voxgate-token-reload-"));
const tokensFile = join(dir, "tokens.json");
let written = 0;

/** Writes the tokens file in one step (a rename), as an operator's tooling should. */
function writeTokens(content: string): void {
  const temp = join(dir, `tokens-${written++}.tmp`);
  writeFileSync(temp, content);
  renameSync(temp, tokensFile);
}

const entry = (name: string, token: string, scopes: TokenEntry["scopes"]): TokenEntry => ({
  name,
  sha256: hashToken(token),
  scopes,
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => "OK",
    (err: unknown) => Code[ConnectError.from(err).code],
  );
}

const alice = generateToken();
const bob = generateToken();
const agentToken = generateToken();

describe("token reload", () => {
  const opened: Array<{ close(): void } | GatewayProcess> = [];
  afterAll(async () => {
    for (const item of opened.reverse()) {
      if ("proc" in item) await item.proc.stop();
      else item.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const client = (gateway: GatewayProcess, token: string): VoxgateClient => {
    const c = createVoxgateClient({ baseUrl: gateway.url, token });
    opened.push(c);
    return c;
  };
  const reloads = (gateway: GatewayProcess, msg: string) =>
    gateway.proc.logs.filter((l: LogLine) => l.msg === msg).length;

  it("a changed file revokes a client token on its next call and ends a revoked agent's session at once", async () => {
    writeTokens(
      JSON.stringify([
        entry("alice", alice, ["tts"]),
        entry("bob", bob, ["tts"]),
        entry("gpu-1", agentToken, ["agent"]),
      ]),
    );
    const gateway = await startGatewayProcess({
      env: { VOXGATE_TOKENS_FILE: tokensFile, VOXGATE_TOKENS_POLL_INTERVAL_MS: "200" },
      readyTimeoutMs: 60_000,
    });
    opened.push(gateway);
    const admin = client(gateway, gateway.clientToken);
    const asAlice = client(gateway, alice);
    const asBob = client(gateway, bob);
    const agent = startAgentProcess(
      { agentPort: gateway.agentPort, agentToken, proc: gateway.proc },
      "gpu-1",
      { VOXGATE_AGENT_ENGINE: "echo", VOXGATE_AGENT_RECONNECT_MAX_MS: "500" },
    );
    try {
      await agent.connected;
      const backend = async () =>
        (await admin.backends.listBackends({})).backends.find((b) => b.id === "gpu-1");
      await waitFor(async () => (await backend())?.state === BackendState.READY, {
        timeoutMs: 30_000,
        what: "agent READY",
      });
      expect(await codeOf(asAlice.tts.synthesize({ text: "before" }))).toBe("OK");

      // Alice and the agent's token go; Bob stays.
      writeTokens(JSON.stringify([entry("bob", bob, ["tts"])]));
      const reloaded = await gateway.proc.waitForLog((l) => l.msg === "tokens reloaded", 30_000);
      expect(reloaded.agentSessionsEnded).toBe(1);
      const ended = await gateway.proc.waitForLog((l) => l.msg === "ending agent session", 5000);
      expect(ended).toMatchObject({ agent: "gpu-1", reason: "agent token revoked" });
      expect(await backend()).toBeUndefined();

      expect(await codeOf(asAlice.tts.synthesize({ text: "after" }))).toBe("Unauthenticated");
      // Bob's token still works (no agent is left to serve him: UNAVAILABLE, not UNAUTHENTICATED).
      expect(await codeOf(asBob.tts.synthesize({ text: "after" }))).toBe("Unavailable");

      // It tries to come back (a short backoff) and is refused each time.
      const refused = await agent.proc.waitForLog(
        (l) =>
          l.msg === "could not join the gateway" && /invalid agent token/.test(String(l.reason)),
        30_000,
      );
      expect(refused).toBeDefined();
      expect(await backend()).toBeUndefined();
      expect(
        gateway.proc.logs.filter((l) => l.msg === "agent joined" && l.agent === "gpu-1"),
      ).toHaveLength(1);
    } finally {
      await agent.proc.stop("SIGKILL");
    }
  }, 120_000);

  it("SIGHUP reloads; an invalid file is logged and the previous tokens stay in force", async () => {
    writeTokens(JSON.stringify([entry("alice", alice, ["tts"])]));
    // Polling off: only SIGHUP reloads.
    const gateway = await startGatewayProcess({
      env: { VOXGATE_TOKENS_FILE: tokensFile, VOXGATE_TOKENS_POLL_INTERVAL_MS: "0" },
      readyTimeoutMs: 60_000,
      agentToken,
    });
    opened.push(gateway);
    const asAlice = client(gateway, alice);
    const asBob = client(gateway, bob);
    const agent = startAgentProcess(gateway, "gpu-2", { VOXGATE_AGENT_ENGINE: "echo" });
    try {
      await agent.connected;
      await waitFor(async () => (await codeOf(asAlice.tts.synthesize({ text: "hi" }))) === "OK", {
        timeoutMs: 30_000,
        what: "alice served",
      });
      expect(await codeOf(asBob.tts.synthesize({ text: "hi" }))).toBe("Unauthenticated");

      // A half-written file: not JSON. Nothing changes, and the error names the file.
      writeTokens('[{"name": "bob", "sha256": ');
      gateway.proc.child.kill("SIGHUP");
      const failed = await gateway.proc.waitForLog(
        (l) => l.msg === "tokens not reloaded: keeping the previous tokens",
        30_000,
      );
      expect(String(failed.err)).toContain(tokensFile);
      expect(failed.level).toBe(50);
      expect(await codeOf(asAlice.tts.synthesize({ text: "still" }))).toBe("OK");
      expect(await codeOf(asBob.tts.synthesize({ text: "still" }))).toBe("Unauthenticated");

      // A bad entry (no scopes) is refused the same way.
      writeTokens(JSON.stringify([{ name: "bob", sha256: hashToken(bob), scopes: [] }]));
      gateway.proc.child.kill("SIGHUP");
      await waitFor(
        () => reloads(gateway, "tokens not reloaded: keeping the previous tokens") >= 2,
        {
          timeoutMs: 30_000,
          what: "second refused reload",
        },
      );
      expect(await codeOf(asAlice.tts.synthesize({ text: "still" }))).toBe("OK");

      // A valid file: Bob in, Alice out, on the next call of each. The env agent token is kept.
      writeTokens(JSON.stringify([entry("bob", bob, ["tts"])]));
      gateway.proc.child.kill("SIGHUP");
      await waitFor(() => reloads(gateway, "tokens reloaded") >= 1, {
        timeoutMs: 30_000,
        what: "reload",
      });
      expect(await codeOf(asBob.tts.synthesize({ text: "now" }))).toBe("OK");
      expect(await codeOf(asAlice.tts.synthesize({ text: "now" }))).toBe("Unauthenticated");
      expect(
        gateway.proc.logs.filter((l) => l.msg === "ending agent session"),
        "the agent's env token is still listed",
      ).toEqual([]);
      expect(gateway.proc.child.exitCode).toBeNull();
    } finally {
      await agent.proc.stop("SIGKILL");
    }
  }, 120_000);
});
