/**
 * Agents on every replica, in one process: three real gateways (agent ports on 127.0.0.1,
 * 127.0.0.2 and 127.0.0.3, one port number, as three replicas behind one DNS name) and one
 * AgentFleet dialling all three over gRPC, its name resolved by a resolver the test changes (the
 * same seam `dns.lookup` fills in production). Any replica routes to the agent; the agent's slots
 * hold over all sessions; replicas that leave the name are left, new ones joined.
 */
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../clients/voxgate-client.js";
import { BackendState } from "../gen/voxgate/v1/backend_admin_pb.js";
import { agentLinkOptionsFromSettings } from "../services/agent/agent.js";
import { AgentFleet } from "../services/agent/agent-fleet.js";
import { agentSettings } from "../services/agent/agent-settings.js";
import { hashToken } from "../services/auth/token-codec.js";
import { settingDefaults } from "../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../services/engine-host/engine-host-handler.js";
import { createEngineHost, describeEngines } from "../services/engine-host/index.js";
import { createGateway, type Gateway } from "../services/gateway/index.js";
import { waitUntil } from "./helpers/failover-stack.js";
import { createInProcessFakeEngine } from "./helpers/in-process-fake-engine.js";
import { kTestGatewayLimits } from "./helpers/test-limits.js";

const CLIENT_TOKEN = "vxg_fleet-client-token";
const AGENT_TOKEN = "vxg_fleet-agent-token";
const AGENT_ID = "fleet-gpu";
const HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
const silent = pino({ level: "silent" });

const gateways: Gateway[] = [];
const urls: string[] = [];
const clients: VoxgateClient[] = [];
let fleet: AgentFleet;
let fleetRun: Promise<void>;
let resolved = [...HOSTS];
const engine = createInProcessFakeEngine({ chunkDelayMs: 20 });
let peak = 0;

beforeAll(async () => {
  let agentPort = 0;
  for (const host of HOSTS) {
    const gateway = createGateway({
      public: { host: "127.0.0.1", port: 0 },
      agent: { host, port: agentPort },
      tokens: [
        { name: "client", sha256: hashToken(CLIENT_TOKEN), scopes: ["tts"] },
        { name: "agents", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] },
      ],
      limits: kTestGatewayLimits,
      log: silent,
    });
    const addresses = await gateway.listen();
    agentPort = addresses.agentPort;
    gateways.push(gateway);
    urls.push(addresses.publicUrl);
  }
  const host = createEngineHost({
    ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
    engines: [engine],
    slots: 2,
  });
  const sampler = setInterval(() => {
    peak = Math.max(peak, host.inFlight);
  }, 2);
  sampler.unref();
  fleet = new AgentFleet({
    ...agentLinkOptionsFromSettings(settingDefaults(agentSettings)),
    gateways: `replicas.voxgate.test:${agentPort}`,
    resolve: async () => [...resolved],
    resolveIntervalMs: 100,
    rejoinDelayMs: 100,
    token: AGENT_TOKEN,
    agentId: AGENT_ID,
    version: "test",
    host,
    capabilities: describeEngines([engine], 2),
    backoff: { initialDelayMs: 50, maxDelayMs: 200 },
    drainTimeoutMs: 5_000,
    log: silent,
  });
  fleetRun = fleet.run();
  await waitUntil(
    () => gateways.every((g) => g.registry.get(AGENT_ID)?.state === BackendState.READY),
    "the agent to be READY on all three replicas",
    20_000,
  );
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await fleet?.shutdown();
  await fleetRun;
  await Promise.all(gateways.map((g) => g.close(500)));
});

function client(index: number): VoxgateClient {
  const created = createVoxgateClient({
    baseUrl: urls[index] ?? "",
    token: CLIENT_TOKEN,
    protocol: "connect",
    httpVersion: "1.1",
  });
  clients.push(created);
  return created;
}

describe("agent fleet over three replicas", () => {
  it("holds one session per replica, so a call on any replica reaches the agent", async () => {
    expect(fleet.gateways).toEqual(HOSTS.map((h) => `${h}:${fleet.gateways[0]?.split(":")[1]}`));
    for (const [i] of HOSTS.entries()) {
      const text = `Hello replica ${i}.`;
      const clip = await client(i).tts.synthesize({ text, encoding: 1 });
      const pcm = engine.expectedPcm(text);
      expect(Buffer.from(clip.data.subarray(clip.data.byteLength - pcm.byteLength))).toEqual(
        Buffer.from(pcm),
      );
      expect(gateways[i]?.registry.get(AGENT_ID)?.callsTotal).toBeGreaterThanOrEqual(1);
    }
  });

  it("keeps the agent's 2 slots over all sessions: 9 calls on 3 replicas all succeed", async () => {
    peak = 0;
    const texts = Array.from({ length: 9 }, (_, i) => `Call ${i} on replica ${i % 3}. Done.`);
    const clips = await Promise.all(
      texts.map((text, i) => client(i % 3).tts.synthesize({ text, encoding: 1 })),
    );
    for (const [i, clip] of clips.entries()) {
      const pcm = engine.expectedPcm(texts[i] ?? "");
      expect(Buffer.from(clip.data.subarray(clip.data.byteLength - pcm.byteLength))).toEqual(
        Buffer.from(pcm),
      );
    }
    // Never more than the agent's own slots at once, though each replica alone saw free slots.
    expect(peak).toBeLessThanOrEqual(2);
  });

  it("leaves a replica that no longer resolves and joins it again when it is back", async () => {
    resolved = HOSTS.slice(0, 2);
    await waitUntil(
      () => gateways[2]?.registry.get(AGENT_ID) === undefined,
      "the third replica to lose the agent",
      20_000,
    );
    expect(fleet.gateways).toHaveLength(2);
    expect(gateways[0]?.registry.get(AGENT_ID)?.state).toBe(BackendState.READY);
    resolved = [...HOSTS];
    await waitUntil(
      () => gateways[2]?.registry.get(AGENT_ID)?.state === BackendState.READY,
      "the third replica to get the agent back",
      20_000,
    );
    await client(2).tts.synthesize({ text: "Back again." });
  });
});
