/**
 * A fake hostile agent: a grpc-js client that speaks AgentService with a valid agent token (see
 * proto/voxgate/v1/agent.proto) and claims and answers whatever a test tells it to. It heartbeats
 * and answers health probes like a real agent, so the gateway routes to it.
 */
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type AgentHelloSchema,
  AgentService,
  type CallRequestSchema,
  type CallResponse,
  type ConnectRequestSchema,
  type ConnectResponse,
} from "../../gen/voxgate/v1/agent_pb.js";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import {
  HealthResponseSchema,
  ServingState,
  SynthesizeResponseSchema,
} from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { kSessionMetadata } from "../../services/agent-link/agent-port-server.js";
import { createGrpcServiceDefinition } from "../../services/grpc/service-definition.js";

/** How the fake agent answers a Synthesize call. */
export type SynthesizeBehaviour =
  | { kind: "ok" }
  | { kind: "status"; code: number; message: string }
  | { kind: "format"; sampleRateHz: number; channels: number; contentType: string };

/** Options of {@link startHostileAgent}. */
export interface HostileAgentOptions {
  agentPort: number;
  token: string;
  /** The hello, as claimed. */
  hello: MessageInitShape<typeof AgentHelloSchema>;
  synthesize: SynthesizeBehaviour;
}

/** A running fake agent. */
export interface HostileAgent {
  /** Synthesize calls it was offered. */
  readonly synthesizeCalls: number;
  close(): void;
}

type Duplex<I, O> = grpc.ClientDuplexStream<I, O>;
type ControlIn = MessageInitShape<typeof ConnectRequestSchema>;
type CallIn = MessageInitShape<typeof CallRequestSchema>;

/** A hello for an agent with one synthesizing engine; `overrides` replace what a test claims. */
export function helloOf(
  agentId: string,
  overrides: { slots?: number; priority?: number; voices?: number } = {},
): HostileAgentOptions["hello"] {
  return {
    agentId,
    version: "hostile",
    priority: overrides.priority ?? 0,
    capabilities: {
      slots: overrides.slots ?? 2,
      engines: [
        {
          id: "fake",
          version: "1",
          features: [Feature.SYNTHESIZE],
          sampleRateHz: 16_000,
          voices: Array.from({ length: overrides.voices ?? 1 }, (_, i) => ({
            id: `voice-${i}`,
            name: `Voice number ${i} with a fairly long descriptive name`,
            languages: ["en-US", "de-DE"],
          })),
        },
      ],
    },
  };
}

/** Connects a fake agent; resolves once the gateway welcomed it. */
export async function startHostileAgent(options: HostileAgentOptions): Promise<HostileAgent> {
  const Client = grpc.makeGenericClientConstructor(
    createGrpcServiceDefinition(AgentService),
    "AgentService",
  );
  const client = new Client(`127.0.0.1:${options.agentPort}`, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${options.token}`);
  const stubs = client as unknown as {
    connect(m: grpc.Metadata): Duplex<ControlIn, ConnectResponse>;
    call(m: grpc.Metadata): Duplex<CallIn, CallResponse>;
  };
  const control = stubs.connect(metadata);
  control.on("error", () => {});
  let heartbeat: NodeJS.Timeout | undefined;
  let synthesizeCalls = 0;
  let sessionId = "";

  let closed = false;
  const answer = (method: string, callId: string) => {
    if (closed) return;
    const callMetadata = metadata.clone();
    callMetadata.set(kSessionMetadata, sessionId);
    const call = stubs.call(callMetadata);
    call.on("error", () => {});
    call.write({ kind: { case: "accept", value: { callId } } });
    call.on("data", (message: CallResponse) => {
      if (message.kind.case !== "requestsDone") return;
      const respond = (bytes: Uint8Array) =>
        call.write({ kind: { case: "response", value: bytes } });
      if (method.endsWith("/Health")) {
        respond(
          toBinary(
            HealthResponseSchema,
            create(HealthResponseSchema, { state: ServingState.SERVING }),
          ),
        );
      } else if (method.endsWith("/Synthesize")) {
        synthesizeCalls++;
        const behaviour = options.synthesize;
        if (behaviour.kind === "status") {
          call.write({
            kind: { case: "status", value: { code: behaviour.code, message: behaviour.message } },
          });
          call.end();
          return;
        }
        const format =
          behaviour.kind === "format"
            ? behaviour
            : { sampleRateHz: 16_000, channels: 1, contentType: "audio/L16; rate=16000" };
        respond(
          toBinary(
            SynthesizeResponseSchema,
            create(SynthesizeResponseSchema, {
              kind: { case: "format", value: { encoding: AudioEncoding.PCM, ...format } },
            }),
          ),
        );
        respond(
          toBinary(
            SynthesizeResponseSchema,
            create(SynthesizeResponseSchema, {
              kind: { case: "audio", value: new Uint8Array(3200) },
            }),
          ),
        );
      } else {
        call.write({ kind: { case: "status", value: { code: 12, message: "not here" } } });
        call.end();
        return;
      }
      call.write({ kind: { case: "status", value: { code: 0, message: "" } } });
      call.end();
    });
  };

  const welcomed = new Promise<void>((resolve, reject) => {
    control.on("data", (message: ConnectResponse) => {
      const { kind } = message;
      if (kind.case === "welcome") {
        sessionId = kind.value.sessionId;
        const beat = () => {
          if (!closed) control.write({ kind: { case: "heartbeat", value: {} } });
        };
        beat();
        heartbeat = setInterval(beat, Math.max(50, kind.value.heartbeatIntervalMs / 2));
        resolve();
      } else if (kind.case === "offer") {
        answer(kind.value.method, kind.value.callId);
      }
    });
    control.on("status", (status: grpc.StatusObject) => {
      reject(new Error(`control stream ended: ${status.code} ${status.details}`));
    });
  });
  control.write({ kind: { case: "hello", value: options.hello } });
  await welcomed;
  return {
    get synthesizeCalls() {
      return synthesizeCalls;
    },
    close() {
      closed = true;
      clearInterval(heartbeat);
      control.end();
      client.close();
    },
  };
}
