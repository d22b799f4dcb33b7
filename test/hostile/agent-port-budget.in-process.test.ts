/**
 * Connection budgets on the agent port (issue 20, item 3): the agent port faces the internet like
 * the public one, so connections over the per-address cap are closed at once (logged, naming the
 * setting), a connection that only sends the HTTP/2 preface is closed after the first-stream
 * timeout, and a real agent still joins afterwards. Before: both held the port without limit.
 * A real gateway on 127.0.0.1; the caps are small so the test runs in seconds; bounds generous.
 */
import * as http2 from "node:http2";
import * as net from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { createGateway, type Gateway } from "../../services/gateway/index.js";
import { kTestGatewayLimits } from "../helpers/test-limits.js";
import { waitFor } from "../helpers/voxgate-process.js";
import { type HostileAgent, helloOf, startHostileAgent } from "./hostile-agent.js";

const AGENT_TOKEN = "vxg_agent-port-budget";
const PER_CLIENT = 4;
const FIRST_STREAM_TIMEOUT_MS = 500;
/** Generous bound for "closed within the timeout" on a loaded machine. */
const CLOSE_BOUND_MS = 15_000;

const open: { gateways: Gateway[]; sockets: net.Socket[]; agents: HostileAgent[] } = {
  gateways: [],
  sockets: [],
  agents: [],
};

afterEach(async () => {
  for (const socket of open.sockets.splice(0)) socket.destroy();
  for (const agent of open.agents.splice(0)) agent.close();
  await Promise.all(open.gateways.splice(0).map((gateway) => gateway.close(500)));
});

/** A gateway whose log lines are kept for the test to read. */
async function startGateway() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: {
      host: "127.0.0.1",
      port: 0,
      limits: {
        maxConnectionsPerClient: PER_CLIENT,
        firstStreamTimeoutMs: FIRST_STREAM_TIMEOUT_MS,
      },
    },
    tokens: [{ name: "gpu-hosts", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] }],
    limits: kTestGatewayLimits,
    log: pino({ level: "info" }, sink),
  });
  open.gateways.push(gateway);
  return { gateway, lines, ...(await gateway.listen()) };
}

/** Connects a raw TCP socket and resolves once it is connected, with a promise of its close. */
function connect(port: number): Promise<{ socket: net.Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    open.sockets.push(socket);
    const started = performance.now();
    const closed = new Promise<number>((done) =>
      socket.once("close", () => done(performance.now() - started)),
    );
    socket.on("error", () => {});
    // Read (and drop) what the server sends, so its FIN is seen and "close" fires.
    socket.resume();
    socket.once("connect", () => resolve({ socket, closed }));
    socket.once("error", reject);
  });
}

describe("the agent port's connection budget", () => {
  it("closes connections over the per-address cap at once, and logs the setting", async () => {
    const started = await startGateway();
    const held = [];
    for (let i = 0; i < PER_CLIENT; i++) held.push(await connect(started.agentPort));
    const over = await connect(started.agentPort);
    // Closed by the budget, not by the first-stream timeout: it is gone while the held ones,
    // opened earlier, still wait for their timeout.
    await over.closed;
    await waitFor(() => started.lines.some((l) => l.msg === "connection refused"), {
      what: "the refusal log line",
    });
    const refusal = started.lines.find((l) => l.msg === "connection refused");
    expect(String(refusal?.reason)).toContain("VOXGATE_AGENT_MAX_CONNECTIONS_PER_CLIENT");
    // The held raw connections never send a stream: the first-stream timeout ends them too.
    const closedAfter = await Promise.all(held.map((h) => h.closed));
    for (const ms of closedAfter) expect(ms).toBeLessThan(CLOSE_BOUND_MS);
  });

  it("closes an HTTP/2 connection that sends only the preface, and still takes a real agent", async () => {
    const started = await startGateway();
    const session = http2.connect(`http://127.0.0.1:${started.agentPort}`);
    session.on("error", () => {});
    const began = performance.now();
    const closedMs = await new Promise<number>((resolve) =>
      session.once("close", () => resolve(performance.now() - began)),
    );
    console.log(
      `[figures] agent port: preface-only connection closed after ${closedMs.toFixed(0)} ms`,
    );
    expect(closedMs).toBeLessThan(CLOSE_BOUND_MS);
    expect(
      started.lines.some(
        (l) =>
          l.msg === "HTTP/2 session closed" &&
          String(l.reason).includes("VOXGATE_AGENT_FIRST_STREAM_TIMEOUT_MS"),
      ),
    ).toBe(true);

    // A real agent opens its control stream at once and is not affected.
    const agent = await startHostileAgent({
      agentPort: started.agentPort,
      token: AGENT_TOKEN,
      hello: helloOf("honest", { priority: 5 }),
      synthesize: { kind: "ok" },
    });
    open.agents.push(agent);
    await waitFor(() => started.gateway.registry.get("honest")?.state === BackendState.READY, {
      what: "the agent READY",
    });
    // It stays: its control stream is open, so neither timeout applies to its connection.
    await new Promise((r) => setTimeout(r, FIRST_STREAM_TIMEOUT_MS * 3));
    expect(started.gateway.registry.get("honest")?.state).toBe(BackendState.READY);
  });
});
