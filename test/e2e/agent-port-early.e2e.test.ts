/**
 * How soon agents are back after a gateway restart (issue 12: "the restarted gateway has its
 * agents back ≤ 3 s"), with real processes on loopback. Two causes of a slow return are checked
 * by what happens, not by timing (the figure itself is measured by `npm run bench:first-audio`
 * and printed here as a `[figures]` line):
 *
 * - the gateway opens its agent port while its database still opens (seconds for embedded PGlite,
 *   tens on a loaded machine): here a database server that accepts connections and never answers
 *   holds the open for as long as the test wants, and an agent still joins and becomes READY;
 * - an agent told to go (GatewayLeaving) dials again at a short, fixed pace until the replacement
 *   answers, instead of climbing its backoff (250, 500, 1000, ... ms) while the replacement starts.
 */
import * as net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { kReplacementRedialJitterMs, kReplacementRedialMs } from "../../services/agent/backoff.js";
import { generateToken } from "../../services/auth/token-codec.js";
import type { LogLine, VoxgateProcess } from "../helpers/voxgate-process.js";
import { spawnVoxgate } from "../helpers/voxgate-process.js";
import { startGatewayProcess } from "../helpers/voxgate-stack.js";

const processes: VoxgateProcess[] = [];
const servers: net.Server[] = [];

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL").catch(() => {})));
  for (const server of servers) server.close();
}, 30_000);

/** A TCP server that accepts connections and never answers: a hung database server. */
async function silentServer(): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("error", () => {});
  });
  server.on("close", () => {
    for (const socket of sockets) socket.destroy();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, connections: () => connections };
}

/** An echo agent dialling `agentPort` with the default backoff. */
function echoAgent(agentPort: number, agentToken: string, id: string): VoxgateProcess {
  const proc = spawnVoxgate(["agent", "--gateway", `127.0.0.1:${agentPort}`, "--id", id], {
    VOXGATE_AGENT_TOKEN: agentToken,
    VOXGATE_AGENT_ENGINE: "echo",
    VOXGATE_LOG_LEVEL: "debug",
  });
  processes.push(proc);
  return proc;
}

const agentReady = (id: string) => (l: LogLine) => l.msg === "agent ready" && l.agent === id;

describe("agents are back after a restart as soon as the agent port opens", () => {
  it("the agent port takes agents while the database is still opening", async () => {
    const database = await silentServer();
    const agentToken = generateToken();
    const gateway = spawnVoxgate(["gateway"], {
      VOXGATE_PORT: "0",
      VOXGATE_AGENT_PORT: "0",
      VOXGATE_TOKEN: generateToken(),
      VOXGATE_AGENT_TOKEN: agentToken,
      VOXGATE_DATABASE_URL: `postgres://voxgate:secret@127.0.0.1:${database.port}/voxgate`,
      // The open waits this long for the silent server: far longer than the test runs.
      VOXGATE_DATABASE_CONNECT_TIMEOUT_MS: "600000",
    });
    processes.push(gateway);
    const listening = await gateway.waitForLog((l) => l.msg === "agent port listening", 60_000);
    const agent = echoAgent(Number(listening.port), agentToken, "early");
    await gateway.waitForLog(agentReady("early"), 60_000);
    // The database was asked and has not answered: it is still opening, the public port closed.
    expect(database.connections()).toBeGreaterThan(0);
    expect(gateway.logs.some((l) => l.msg === "database open")).toBe(false);
    expect(gateway.logs.some((l) => l.msg === "public port listening")).toBe(false);
    expect(agent.logs.some((l) => l.msg === "connected to gateway")).toBe(true);
    await gateway.stop("SIGKILL");
  }, 120_000);

  it("an agent told to go redials at a short pace until the replacement answers", async () => {
    const old = await startGatewayProcess({ readyTimeoutMs: 60_000 });
    processes.push(old.proc);
    const agent = echoAgent(old.agentPort, old.agentToken, "pace");
    await old.proc.waitForLog(agentReady("pace"), 60_000);

    old.proc.child.kill("SIGTERM");
    await agent.waitForLog((l) => l.msg === "gateway is leaving; dialling again at once", 60_000);
    // No replacement yet: the agent keeps dialling the closed port. Without the short pace its
    // fifth delay alone could reach 4 s (backoff 250 ms doubling per attempt).
    const waits = () => agent.logs.filter((l) => l.msg === "waiting for the gateway's replacement");
    await agent.waitForLog(() => waits().length >= 5, 60_000);
    expect(await old.proc.exited()).toBe(0);

    const replacement = await startGatewayProcess({
      readyTimeoutMs: 60_000,
      agentPort: old.agentPort,
      agentToken: old.agentToken,
    });
    processes.push(replacement.proc);
    const ready = await replacement.proc.waitForLog(agentReady("pace"), 60_000);
    const leftAt = agent.logs.findIndex(
      (l) => l.msg === "gateway is leaving; dialling again at once",
    );
    const afterLeaving = agent.logs.slice(leftAt);
    // Every wait was the short pace; the backoff never started.
    expect(afterLeaving.some((l) => l.msg === "reconnecting after delay")).toBe(false);
    for (const wait of waits()) {
      expect(Number(wait.delayMs)).toBeGreaterThanOrEqual(kReplacementRedialMs);
      expect(Number(wait.delayMs)).toBeLessThanOrEqual(
        kReplacementRedialMs + kReplacementRedialJitterMs,
      );
    }
    // Refused dials while waiting are expected: logged at debug, not as warnings.
    expect(afterLeaving.some((l) => l.msg === "could not join the gateway" && l.level === 40)).toBe(
      false,
    );
    const portOpen = replacement.proc.logs.find((l) => l.msg === "agent port listening");
    console.log(
      `[figures] restart: replacement agent port open → agent READY ${Number(ready.time) - Number(portOpen?.time)} ms ` +
        `(${waits().length} short waits while no gateway listened)`,
    );
    await Promise.all([replacement.proc.stop("SIGTERM"), agent.stop("SIGTERM")]);
  }, 180_000);
});
