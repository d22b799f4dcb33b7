/**
 * Test helper: an in-process gateway for relay clients, with optional real agent processes
 * (espeak-ng unless told otherwise) and an optional RunPod emulator registered as a serverless
 * backend. Tokens: `client` (tts, voices, admin), `other` (tts, voices: another owner) and
 * `ttsOnly` (tts).
 */
import { pino } from "pino";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { generateToken, hashToken } from "../../services/auth/token-codec.js";
import { serverlessEntryDefaults } from "../../services/backends/index.js";
import { createGateway, type Gateway } from "../../services/gateway/gateway.js";
import type { GatewayStorageOptions } from "../../services/gateway/gateway-storage.js";
import { waitUntil } from "../helpers/failover-stack.js";
import { kTestGatewayLimits } from "../helpers/test-limits.js";
import type { VoxgateProcess } from "../helpers/voxgate-process.js";
import { startAgentProcess } from "../helpers/voxgate-stack.js";
import { createRunPodEmulator, type RunPodEmulator } from "../runpod-emulator/index.js";

/** Options of {@link startRelayStack}. */
export interface RelayStackOptions {
  /** Agent processes to start, by id, with extra environment. @default none */
  agents?: Record<string, Record<string, string>>;
  /** Register a RunPod emulator endpoint (workers that answer every job with `{}`). */
  runpod?: { workers?: number };
  /** Gateway storage. @default temporary */
  storage?: GatewayStorageOptions;
}

/** A running relay stack. */
export interface RelayStack {
  url: string;
  gateway: Gateway;
  tokens: { client: string; other: string; ttsOnly: string };
  agentPort: number;
  agentToken: string;
  agents: VoxgateProcess[];
  runpod: RunPodEmulator | undefined;
  /** `fetch` against the gateway with the `client` token (or the one given). */
  fetch(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

/** Starts the stack; resolves once every agent is READY. */
export async function startRelayStack(options: RelayStackOptions = {}): Promise<RelayStack> {
  const tokens = { client: generateToken(), other: generateToken(), ttsOnly: generateToken() };
  const agentToken = generateToken();
  let runpod: RunPodEmulator | undefined;
  let endpointUrl = "";
  if (options.runpod) {
    runpod = createRunPodEmulator({
      apiKey: "rp-key",
      workers: options.runpod.workers ?? 1,
      handler: async () => ({}),
    });
    endpointUrl = await runpod.listen();
  }
  const gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [
      { name: "client", sha256: hashToken(tokens.client), scopes: ["tts", "voices", "admin"] },
      { name: "other", sha256: hashToken(tokens.other), scopes: ["tts", "voices"] },
      { name: "tts-only", sha256: hashToken(tokens.ttsOnly), scopes: ["tts"] },
      { name: "agents", sha256: hashToken(agentToken), scopes: ["agent"] },
    ],
    ...(runpod
      ? {
          backends: [
            {
              ...serverlessEntryDefaults(),
              id: "runpod-relay",
              endpointUrl,
              apiKey: "rp-key",
              // Last resort: agents serve the relay's calls when they are up.
              priority: 1000,
              engines: [
                {
                  id: "espeak-ng",
                  version: "1",
                  sampleRateHz: 22_050,
                  model: { family: "espeak-ng", size: "" },
                  features: ["synthesize"],
                  voices: [{ id: "en-us", name: "English", languages: ["en"], gender: "" }],
                },
              ],
            },
          ],
        }
      : {}),
    limits: { ...kTestGatewayLimits, maxRequestBytes: 8 * 1024 * 1024 },
    ...(options.storage ? { storage: options.storage } : {}),
    log: pino({ level: "silent" }),
  });
  const addresses = await gateway.listen();
  const agents: VoxgateProcess[] = [];
  const stack: RelayStack = {
    url: addresses.publicUrl,
    gateway,
    tokens,
    agentPort: addresses.agentPort,
    agentToken,
    agents,
    runpod,
    fetch(path, init = {}) {
      const { token = tokens.client, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token) headers.set("authorization", `Bearer ${token}`);
      return fetch(`${addresses.publicUrl}${path}`, { ...rest, headers });
    },
    async close() {
      await Promise.allSettled(agents.map((a) => a.stop()));
      await gateway.close(1000);
      await runpod?.close();
    },
  };
  try {
    for (const [id, env] of Object.entries(options.agents ?? {})) {
      const agent = startAgentProcess({ agentPort: addresses.agentPort, agentToken }, id, env);
      agents.push(agent.proc);
      await agent.connected;
    }
    await waitUntil(
      () =>
        Object.keys(options.agents ?? {}).every(
          (id) => gateway.registry.get(id)?.state === BackendState.READY,
        ),
      "agents ready",
      30_000,
    );
  } catch (err) {
    await stack.close();
    throw err;
  }
  return stack;
}
