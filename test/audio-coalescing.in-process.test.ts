/**
 * Audio coalescing on the agent link, in one process: a real gateway, a real Agent hosting the
 * echo engine (a known byte pattern in chunks of a chosen size), and a gRPC client that stops
 * reading for a while. Audio the link cannot take meanwhile travels in bigger messages, and every
 * byte still arrives, in order.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterEach, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../clients/voxgate-client.js";
import { AudioEncoding } from "../gen/voxgate/v1/audio_pb.js";
import { BackendState } from "../gen/voxgate/v1/backend_admin_pb.js";
import {
  Agent,
  agentLinkOptionsFromSettings,
  kMaxCoalescedAudioBytes,
} from "../services/agent/agent.js";
import { agentSettings } from "../services/agent/agent-settings.js";
import { hashToken } from "../services/auth/token-codec.js";
import { settingDefaults } from "../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../services/engine-host/engine-host-handler.js";
import { createEngineHost, describeEngines } from "../services/engine-host/index.js";
import {
  countEchoMismatches,
  createEchoEngine,
  ECHO_PARAMS,
} from "../services/engines/echo/index.js";
import { createGateway, type Gateway } from "../services/gateway/index.js";
import { kTestGatewayLimits } from "./helpers/test-limits.js";

const silent = pino({ level: "silent" });
const closers: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function startStack(): Promise<VoxgateClient> {
  const gateway: Gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [
      { name: "client", sha256: hashToken("vxg_coalesce-client"), scopes: ["tts"] },
      { name: "agents", sha256: hashToken("vxg_coalesce-agent"), scopes: ["agent"] },
    ],
    limits: { ...kTestGatewayLimits, maxClipBytes: 64 * 1024 * 1024 },
    log: silent,
  });
  closers.push(() => gateway.close(500));
  const { publicUrl, agentPort } = await gateway.listen();
  const engine = createEchoEngine();
  const agent = new Agent({
    ...agentLinkOptionsFromSettings(settingDefaults(agentSettings)),
    gatewayAddress: `127.0.0.1:${agentPort}`,
    token: "vxg_coalesce-agent",
    agentId: "echo-box",
    version: "test",
    host: createEngineHost({
      ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
      engines: [engine],
      slots: 2,
    }),
    capabilities: describeEngines([engine], 2),
    log: silent,
  });
  void agent.run();
  closers.push(() => agent.shutdown());
  while (gateway.registry.get("echo-box")?.state !== BackendState.READY) await sleep(10);
  const client = createVoxgateClient({
    baseUrl: publicUrl,
    token: "vxg_coalesce-client",
    protocol: "grpc",
    httpVersion: "2",
  });
  closers.push(() => client.close());
  return client;
}

it("merges audio the link cannot take yet into bigger messages, keeping every byte in order", async () => {
  const client = await startStack();
  const answerBytes = 24 * 1024 * 1024;
  const chunkBytes = 16 * 1024;
  const sizes: number[] = [];
  let received = 0;
  let mismatches = 0;
  for await (const chunk of client.tts.streamSynthesize({
    text: "coalesce",
    encoding: AudioEncoding.PCM,
    params: {
      [ECHO_PARAMS.bytes]: String(answerBytes),
      [ECHO_PARAMS.chunkBytes]: String(chunkBytes),
    },
  })) {
    // Stop reading after the first message: the agent keeps producing, the link backs up.
    if (sizes.length === 0) await sleep(500);
    mismatches += countEchoMismatches(chunk.data, received);
    received += chunk.data.byteLength;
    sizes.push(chunk.data.byteLength);
  }
  expect(received).toBe(answerBytes);
  expect(mismatches).toBe(0);
  // The engine made 1,536 chunks of 16 KiB; merged ones are bigger, none past the cap.
  expect(sizes.length).toBeLessThan(answerBytes / chunkBytes);
  expect(Math.max(...sizes)).toBeGreaterThan(chunkBytes);
  expect(Math.max(...sizes)).toBeLessThanOrEqual(kMaxCoalescedAudioBytes);
  expect(sizes.every((size) => size % chunkBytes === 0)).toBe(true);
});
