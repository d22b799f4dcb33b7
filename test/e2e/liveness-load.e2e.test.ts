/**
 * Liveness under load with real processes and the gateway's DEFAULT liveness settings: busy agents
 * are kept while the machine is saturated, a frozen one is still removed.
 *
 * The issue asks for 1,000 concurrent streams on 4 agents × 250 slots; that run is
 * bench/liveness-load.ts (npm run bench -- --only liveness-load). This test is sized for CI's time
 * budget: 200 concurrent echo streams on 2 agents × 100 slots (256 KiB each, every stream held
 * open until all are running, then all send at once, which keeps both cores busy), plus a third
 * agent (worst priority, so never routed to) SIGSTOPped while the streams run. It proves: 0 of
 * the serving agents dropped, every call complete, the frozen agent removed (the gateway's own
 * figure is printed; the bound here is generous for a loaded CI machine).
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { ECHO_PARAMS } from "../../services/engines/echo/index.js";
import { waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

const AGENTS = 2;
const SLOTS = 100;
const STREAMS = AGENTS * SLOTS;
/** Echo answer size; the stream carries it behind a 44-byte WAV header. */
const ANSWER_BYTES = 256 * 1024;
const STREAM_BYTES = ANSWER_BYTES + 44;
/** Streams hold after their first chunk until this long after the first started. */
const HOLD_BUDGET_MS = 8000;
const VICTIM = "frozen-victim";

describe("liveness under load", () => {
  let gateway: GatewayProcess;
  const clients: VoxgateClient[] = [];
  const agents: Array<ReturnType<typeof startAgentProcess>> = [];

  beforeAll(async () => {
    gateway = await startGatewayProcess({ readyTimeoutMs: 60_000 });
    // Two client connections: 100 streams each, as separate callers would open.
    for (let i = 0; i < 2; i++) {
      clients.push(createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken }));
    }
  }, 90_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    for (const agent of agents) {
      agent.proc.child.kill("SIGKILL");
      agent.proc.child.kill("SIGCONT");
      await agent.proc.exited();
    }
    expect(await gateway?.proc.stop()).toBe(0);
  });

  it(`keeps ${AGENTS} busy agents through ${STREAMS} concurrent streams and removes a frozen one`, async () => {
    const admin = clients[0] as VoxgateClient;
    for (let i = 1; i <= AGENTS; i++) {
      agents.push(
        startAgentProcess(gateway, `busy-${i}`, {
          VOXGATE_AGENT_ENGINE: "echo",
          VOXGATE_AGENT_SLOTS: String(SLOTS),
        }),
      );
    }
    const victim = startAgentProcess(gateway, VICTIM, {
      VOXGATE_AGENT_ENGINE: "echo",
      VOXGATE_AGENT_SLOTS: "1",
      VOXGATE_AGENT_PRIORITY: "1000",
    });
    agents.push(victim);
    await Promise.all(agents.map((a) => a.connected));
    await waitFor(
      async () =>
        (await admin.backends.listBackends({})).backends.filter(
          (b) => b.state === BackendState.READY,
        ).length ===
        AGENTS + 1,
      { timeoutMs: 30_000, what: "every agent READY" },
    );

    let opened = 0;
    let stopVictim: () => void = () => {};
    const halfOpen = new Promise<void>((resolve) => {
      stopVictim = resolve;
    });
    const began = performance.now();
    const holdUntil = began + HOLD_BUDGET_MS;
    const stream = async (i: number): Promise<number | string> => {
      const params = {
        [ECHO_PARAMS.bytes]: String(ANSWER_BYTES),
        [ECHO_PARAMS.chunkBytes]: String(16 * 1024),
        [ECHO_PARAMS.holdMs]: String(Math.round(Math.max(1000, holdUntil - performance.now()))),
      };
      let bytes = 0;
      try {
        const client = clients[i % clients.length] as VoxgateClient;
        for await (const chunk of client.tts.streamSynthesize(
          { text: "load", params },
          { timeoutMs: 120_000 },
        )) {
          if (bytes === 0 && ++opened === STREAMS / 2) stopVictim();
          bytes += chunk.data.byteLength;
        }
        return bytes;
      } catch (err) {
        return `${Code[ConnectError.from(err).code]}: ${ConnectError.from(err).rawMessage}`;
      }
    };
    const calls = Promise.all(Array.from({ length: STREAMS }, (_, i) => stream(i)));

    await Promise.race([halfOpen, calls]);
    const stoppedAt = Date.now();
    victim.proc.child.kill("SIGSTOP");
    const results = await calls;
    const runMs = performance.now() - began;

    await waitFor(
      async () => !(await admin.backends.listBackends({})).backends.some((b) => b.id === VICTIM),
      { timeoutMs: 30_000, what: "frozen agent removed" },
    );
    const closed = gateway.proc.logs.filter((l) => l.msg === "agent session closed");
    const victimClosed = closed.find((l) => l.agent === VICTIM);
    const removedMs = Number(victimClosed?.time) - stoppedAt;
    const silent = gateway.proc.logs.find(
      (l) => l.msg === "agent connection silent past its limit; closing it",
    );
    const failures = results.filter((r) => r !== STREAM_BYTES);
    console.info(
      `[figures] ${STREAMS} streams on ${AGENTS} agents × ${SLOTS} slots: ${STREAMS - failures.length}/${STREAMS} complete in ${Math.round(runMs)} ms; ` +
        `serving agents dropped: ${closed.filter((l) => l.agent !== VICTIM).length}; ` +
        `SIGSTOP → frozen agent removed ${removedMs} ms (gateway log; silent ${String(silent?.silentMs)} ms, limit ${String(silent?.limitMs)} ms)`,
    );

    expect(failures.slice(0, 3)).toEqual([]);
    expect(closed.filter((l) => l.agent !== VICTIM)).toEqual([]);
    expect(victimClosed?.reason).toBe("agent connection lost");
    // The goal is 3 s (checked by the bench); a loaded CI machine gets room.
    expect(removedMs).toBeLessThan(20_000);
    const backends = (await admin.backends.listBackends({})).backends;
    expect(backends.map((b) => [b.id, b.state])).toEqual(
      Array.from({ length: AGENTS }, (_, i) => [`busy-${i + 1}`, BackendState.READY]),
    );
  }, 180_000);
});
