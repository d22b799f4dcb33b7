/**
 * Standby call streams, in one process: a real gateway and a real Agent over gRPC on 127.0.0.1.
 * The agent keeps call streams open in advance; the gateway starts a call on one by sending the
 * work offer down it (no offer on the control stream, no stream set-up on the call's path), the
 * agent opens a replacement, and with none free the control-stream offer still works. Every
 * message the agent receives is recorded by a grpc-js client interceptor, per RPC.
 */

import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../clients/voxgate-client.js";
import {
  AgentService,
  type CallRequest,
  type CallResponse,
  type ConnectRequest,
  type ConnectResponse,
  ConnectResponseSchema,
} from "../gen/voxgate/v1/agent_pb.js";
import { AudioEncoding } from "../gen/voxgate/v1/audio_pb.js";
import { BackendState } from "../gen/voxgate/v1/backend_admin_pb.js";
import { Agent, agentLinkOptionsFromSettings } from "../services/agent/agent.js";
import { agentSettings } from "../services/agent/agent-settings.js";
import { hashToken } from "../services/auth/token-codec.js";
import { settingDefaults } from "../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../services/engine-host/engine-host-handler.js";
import { createEngineHost, describeEngines } from "../services/engine-host/index.js";
import { createGateway, type Gateway } from "../services/gateway/index.js";
import { createGrpcServiceDefinition } from "../services/grpc/service-definition.js";
import { createInProcessFakeEngine } from "./helpers/in-process-fake-engine.js";
import { kTestGatewayLimits } from "./helpers/test-limits.js";

const CLIENT_TOKEN = "vxg_standby-client-token";
const AGENT_TOKEN = "vxg_standby-agent-token";
const AGENT_ID = "standby-box";
const TEXT = "One fish. Two fish.";
const silent = pino({ level: "silent" });

const opened: {
  clients: VoxgateClient[];
  agents: Agent[];
  gateways: Gateway[];
  closers: (() => void)[];
} = { clients: [], agents: [], gateways: [], closers: [] };

afterEach(async () => {
  for (const c of opened.clients.splice(0)) c.close();
  await Promise.all(opened.agents.splice(0).map((a) => a.shutdown()));
  await Promise.all(opened.gateways.splice(0).map((g) => g.close(500)));
  for (const close of opened.closers.splice(0)) close();
});

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What the agent received, per RPC, and what became of each standby stream it opened. */
function createRecorder() {
  const control: ConnectResponse[] = [];
  const calls: CallResponse[] = [];
  const callStatuses: grpc.StatusObject[] = [];
  const standby: { offered: boolean; ended: boolean }[] = [];
  const interceptor: grpc.Interceptor = (options, nextCall) => {
    const isCall = options.method_definition.path.endsWith("/Call");
    let mine: { offered: boolean; ended: boolean } | undefined;
    return new grpc.InterceptingCall(nextCall(options), {
      sendMessage(message: CallRequest, next) {
        if (isCall && message.kind.case === "standby") {
          mine = { offered: false, ended: false };
          standby.push(mine);
        }
        next(message);
      },
      start(metadata, _listener, next) {
        next(metadata, {
          onReceiveMessage(message, nxt) {
            (isCall ? calls : control).push(message);
            if (mine && (message as CallResponse).kind.case === "offer") mine.offered = true;
            nxt(message);
          },
          onReceiveStatus(status, nxt) {
            if (isCall) callStatuses.push(status);
            if (mine) mine.ended = true;
            nxt(status);
          },
        });
      },
    });
  };
  return {
    interceptor,
    control,
    calls,
    callStatuses,
    /** Standby streams the agent opened. */
    get standbyOpened() {
      return standby.length;
    },
    /** Standby streams open and unused now. */
    get standbyIdle() {
      return standby.filter((s) => !s.offered && !s.ended).length;
    },
  };
}

async function startStack(options: {
  standbyStreams: number;
  maxStandbyStreams?: number;
  slots?: number;
}) {
  const gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: {
      host: "127.0.0.1",
      port: 0,
      ...(options.maxStandbyStreams !== undefined
        ? { limits: { maxStandbyStreams: options.maxStandbyStreams } }
        : {}),
    },
    tokens: [
      { name: "client", sha256: hashToken(CLIENT_TOKEN), scopes: ["tts"] },
      { name: "gpu-hosts", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] },
    ],
    limits: kTestGatewayLimits,
    log: silent,
  });
  opened.gateways.push(gateway);
  const { publicUrl, agentPort } = await gateway.listen();
  const engine = createInProcessFakeEngine({ chunkDelayMs: 2 });
  const slots = options.slots ?? 4;
  const recorder = createRecorder();
  const agent = new Agent({
    ...agentLinkOptionsFromSettings(settingDefaults(agentSettings)),
    gatewayAddress: `127.0.0.1:${agentPort}`,
    token: AGENT_TOKEN,
    agentId: AGENT_ID,
    version: "test",
    host: createEngineHost({
      ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
      engines: [engine],
      slots,
    }),
    capabilities: describeEngines([engine], slots),
    standbyStreams: options.standbyStreams,
    interceptors: [recorder.interceptor],
    log: silent,
  });
  opened.agents.push(agent);
  void agent.run();
  await waitFor(
    () => gateway.registry.get(AGENT_ID)?.state === BackendState.READY,
    "the agent to be ready",
  );
  const voxgate = createVoxgateClient({
    baseUrl: publicUrl,
    token: CLIENT_TOKEN,
    protocol: "grpc",
    httpVersion: "2",
  });
  opened.clients.push(voxgate);
  /** One whole PCM call; checks the audio is exactly the engine's. */
  const speak = async () => {
    const parts: Uint8Array[] = [];
    for await (const chunk of voxgate.tts.streamSynthesize({
      text: TEXT,
      encoding: AudioEncoding.PCM,
    })) {
      parts.push(chunk.data);
    }
    expect(Buffer.concat(parts).equals(Buffer.from(engine.expectedPcm(TEXT)))).toBe(true);
  };
  return { gateway, agent, recorder, speak };
}

/**
 * Offers of `method` among `messages` ("" = any method: health probes travel the same way as
 * synthesis calls).
 */
function offersOn(
  messages: readonly (ConnectResponse | CallResponse)[],
  method = "/voxgate.v1.GPUBackendService/Synthesize",
): number {
  return messages.filter(
    (m) => m.kind.case === "offer" && (!method || m.kind.value.method === method),
  ).length;
}

describe("standby call streams", () => {
  it("start every call without an offer on the control stream, and are topped back up", async () => {
    const { recorder, speak } = await startStack({ standbyStreams: 2 });
    await waitFor(() => recorder.standbyIdle === 2, "two standby streams");
    for (let i = 0; i < 5; i++) await speak();
    expect(offersOn(recorder.control)).toBe(0);
    expect(offersOn(recorder.calls)).toBe(5);
    // Each call used one standby stream and the agent opened one in its place.
    expect(recorder.standbyOpened).toBeGreaterThanOrEqual(2 + 5);
    await waitFor(() => recorder.standbyIdle === 2, "the pool to be topped back up to two");
  });

  it("fall back to control-stream offers when more calls run than streams stand by", async () => {
    const { recorder, speak } = await startStack({ standbyStreams: 1, slots: 6 });
    await waitFor(() => recorder.standbyIdle === 1, "one standby stream");
    await Promise.all(Array.from({ length: 6 }, speak));
    const viaStandby = offersOn(recorder.calls);
    const viaControl = offersOn(recorder.control);
    expect(viaStandby + viaControl).toBe(6);
    expect(viaStandby).toBeGreaterThanOrEqual(1);
    expect(viaControl).toBeGreaterThanOrEqual(1);
  });

  it("are not needed: with none, every call is offered on the control stream", async () => {
    const { recorder, speak } = await startStack({ standbyStreams: 0 });
    for (let i = 0; i < 3; i++) await speak();
    expect(offersOn(recorder.control)).toBe(3);
    expect(offersOn(recorder.calls, "")).toBe(0);
    expect(recorder.standbyOpened).toBe(0);
  });

  it("beyond the gateway's limit are refused with RESOURCE_EXHAUSTED naming the setting", async () => {
    const { recorder, speak } = await startStack({ standbyStreams: 3, maxStandbyStreams: 1 });
    await waitFor(() => recorder.callStatuses.length >= 2, "two refusals");
    expect(recorder.standbyOpened).toBe(3);
    for (const status of recorder.callStatuses.slice(0, 2)) {
      expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(status.details).toContain("VOXGATE_AGENT_MAX_STANDBY_STREAMS");
    }
    // The agent keeps what the gateway took and stops asking (no retry a second later).
    await new Promise((resolve) => setTimeout(resolve, 1300));
    expect(recorder.standbyOpened).toBe(3);
    // The one it kept carries a call.
    await speak();
    expect(offersOn(recorder.calls)).toBe(1);
  });

  it("are closed when the agent drains: new calls find no backend instead of a dead stream", async () => {
    const { gateway, agent, recorder } = await startStack({ standbyStreams: 2 });
    await waitFor(() => recorder.standbyIdle === 2, "two standby streams");
    await agent.drain("test");
    await waitFor(() => gateway.registry.get(AGENT_ID) === undefined, "the agent to leave");
    expect(offersOn(recorder.calls)).toBe(0);
    // Every standby stream ended (cancelled by the agent, or closed by the gateway), none in use.
    await waitFor(() => recorder.standbyIdle === 0, "the standby streams to end");
  });

  it("stop being asked for by an agent whose gateway does not know them (an older version)", async () => {
    // A gateway of the version before standby streams: it welcomes the agent and refuses any
    // call stream that does not start with accept, as that version did.
    let standbyAsks = 0;
    const server = new grpc.Server();
    server.addService(createGrpcServiceDefinition(AgentService), {
      connect(control: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>) {
        control.on("data", (m: ConnectRequest) => {
          if (m.kind.case !== "hello") return;
          control.write(
            create(ConnectResponseSchema, {
              kind: {
                case: "welcome",
                value: {
                  sessionId: "s1",
                  heartbeatIntervalMs: 1000,
                  backendId: m.kind.value.agentId,
                },
              },
            }),
          );
        });
        control.on("error", () => {});
      },
      call(stream: grpc.ServerDuplexStream<CallRequest, CallResponse>) {
        stream.once("data", (first: CallRequest) => {
          if (first.kind.case === "standby") standbyAsks++;
          stream.emit("error", {
            code: grpc.status.FAILED_PRECONDITION,
            details: "a call stream must start with accept",
          });
        });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    opened.closers.push(() => server.forceShutdown());
    const engine = createInProcessFakeEngine();
    const agent = new Agent({
      ...agentLinkOptionsFromSettings(settingDefaults(agentSettings)),
      gatewayAddress: `127.0.0.1:${port}`,
      token: AGENT_TOKEN,
      agentId: AGENT_ID,
      version: "test",
      host: createEngineHost({
        ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
        engines: [engine],
        slots: 4,
      }),
      capabilities: describeEngines([engine], 4),
      standbyStreams: 3,
      log: silent,
    });
    opened.agents.push(agent);
    void agent.run();
    await waitFor(() => standbyAsks === 3, "the first three standby streams");
    // Refused with FAILED_PRECONDITION: the agent stops asking (no retry a second later).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(standbyAsks).toBe(3);
    expect(agent.state).toBe("connected");
  });
});
