/**
 * The slot leak, with real processes: an agent held back by a slow reader (two big streams whose
 * client stopped reading) loses its link for 4 s (a blackholing TCP proxy), the link heals, and
 * the agent must serve again with every slot: 20 calls in a row succeed on it.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { ECHO_PARAMS } from "../../services/engines/echo/index.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { spawnVoxgate, type VoxgateProcess, waitFor } from "../helpers/voxgate-process.js";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";

/** As the issue: two 64 MB streams, far more than the link's windows hold. */
const BIG_BYTES = 64 * 1024 * 1024;
const BLACKHOLE_MS = 4000;
const CALLS_AFTER = 20;

describe("slot leak after a blackholed link", () => {
  let gateway: GatewayProcess;
  let client: VoxgateClient;
  let proxy: TcpProxy;
  let agent: VoxgateProcess;

  beforeAll(async () => {
    gateway = await startGatewayProcess();
    client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
    proxy = await startTcpProxy({ targetPort: gateway.agentPort });
    agent = spawnVoxgate(["agent", "--gateway", `127.0.0.1:${proxy.port}`, "--id", "held"], {
      VOXGATE_AGENT_TOKEN: gateway.agentToken,
      VOXGATE_AGENT_ENGINE: "echo",
      VOXGATE_AGENT_SLOTS: "2",
      VOXGATE_AGENT_RECONNECT_MAX_MS: "1000",
    });
    await agent.waitForLog((l) => l.msg === "connected to gateway", 30_000);
  });

  afterAll(async () => {
    await agent?.stop("SIGKILL");
    await proxy?.close();
    client?.close();
    const code = await gateway?.proc.stop();
    if (code !== 0)
      console.info(
        gateway.proc.logs
          .slice(-10)
          .map((l) => l.msg)
          .join("\n"),
      );
    expect(code).toBe(0);
  });

  const backend = async () =>
    (await client.backends.listBackends({})).backends.find((b) => b.id === "held");

  it(`frees both slots after slow readers and a ${BLACKHOLE_MS} ms blackhole: ${CALLS_AFTER}/${CALLS_AFTER} calls succeed after`, async () => {
    await waitFor(async () => (await backend())?.state === BackendState.READY, {
      what: "agent ready",
    });
    // Two streams whose client reads the first piece and then stops reading.
    const stalled = new AbortController();
    const params = { [ECHO_PARAMS.bytes]: String(BIG_BYTES) };
    const readers = [0, 1].map(async () => {
      const stream = client.tts
        .streamSynthesize({ text: "big", params }, { signal: stalled.signal })
        [Symbol.asyncIterator]();
      await stream.next();
      return stream;
    });
    const opened = await Promise.all(readers);
    // Let the agent fill every window between it and the stalled reader.
    await waitFor(async () => ((await backend())?.inFlight ?? 0) >= 2, {
      what: "both slots in use",
    });
    await new Promise((r) => setTimeout(r, 1000));

    proxy.blackhole();
    const blackholedAt = performance.now();
    await waitFor(async () => !(await backend()), {
      timeoutMs: BLACKHOLE_MS + 10_000,
      what: "gateway dropped the blackholed agent",
    });
    const leftMs = BLACKHOLE_MS - (performance.now() - blackholedAt);
    if (leftMs > 0) await new Promise((r) => setTimeout(r, leftMs));
    proxy.heal();
    // The stalled readers' calls are over (their backend went away); nobody reads them anyway.
    stalled.abort();
    for (const stream of opened) await stream.return?.().catch(() => undefined);

    await waitFor(async () => (await backend())?.state === BackendState.READY, {
      timeoutMs: 20_000,
      what: "agent back and READY after the heal",
    });
    const results: string[] = [];
    for (let i = 0; i < CALLS_AFTER; i++) {
      const outcome = await client.tts
        .synthesize({ text: `call ${i}`, params: { [ECHO_PARAMS.bytes]: "4096" } })
        .then(
          (r) => (r.data.byteLength > 4096 ? "ok" : `short answer ${r.data.byteLength}`),
          (err: unknown) =>
            `${Code[ConnectError.from(err).code]}: ${ConnectError.from(err).rawMessage}`,
        );
      results.push(outcome);
    }
    expect(
      results.filter((r) => r !== "ok"),
      results.join("\n"),
    ).toEqual([]);
    // Both slots, not one: two calls at once run side by side.
    const pair = await Promise.all(
      [0, 1].map(() =>
        client.tts.synthesize({
          text: "pair",
          params: { [ECHO_PARAMS.bytes]: "4096", [ECHO_PARAMS.holdMs]: "300" },
        }),
      ),
    );
    expect(pair.map((r) => r.data.byteLength > 4096)).toEqual([true, true]);
    // The gateway's own count holds no call that ended: nothing leaked on this side either.
    await waitFor(async () => (await backend())?.inFlight === 0, {
      timeoutMs: 5000,
      what: "the gateway counts no call in flight on the agent",
    });
  }, 90_000);
});
