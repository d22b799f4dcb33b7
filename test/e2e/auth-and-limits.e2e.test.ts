/**
 * Tokens and limits on both ports of a real gateway process: wrong and missing tokens are refused
 * on each port, client and agent tokens never cross ports, and oversized text is refused with
 * INVALID_ARGUMENT naming the limit.
 */

import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateProtocol } from "../../clients/voxgate-client.js";
import { AgentService } from "../../gen/voxgate/v1/agent_pb.js";
import { generateToken } from "../../services/auth/token-codec.js";
import { createGrpcServiceDefinition } from "../../services/grpc/service-definition.js";
import { waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

const MAX_TEXT_CHARS = 200;
const protocols: VoxgateProtocol[] = ["connect", "grpc", "grpc-web"];

/** Opens the agent control stream with `token` and resolves with the status the gateway ends it with. */
function agentPortStatus(agentPort: number, token: string | undefined): Promise<grpc.StatusObject> {
  const Client = grpc.makeGenericClientConstructor(
    createGrpcServiceDefinition(AgentService),
    "AgentService",
  );
  const client = new Client(`127.0.0.1:${agentPort}`, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
  const stream = (
    client as unknown as { connect(m: grpc.Metadata): grpc.ClientDuplexStream<unknown, unknown> }
  ).connect(metadata);
  return new Promise((resolve) => {
    stream.on("data", () => {});
    stream.on("error", () => {});
    stream.on("status", (status: grpc.StatusObject) => {
      client.close();
      resolve(status);
    });
  });
}

describe("auth and limits on both ports", () => {
  let gateway: GatewayProcess;
  let agent: ReturnType<typeof startAgentProcess> | undefined;

  beforeAll(async () => {
    gateway = await startGatewayProcess({
      env: { VOXGATE_MAX_TEXT_CHARS: String(MAX_TEXT_CHARS) },
    });
    agent = startAgentProcess(gateway, "auth-agent");
    await agent.connected;
  });

  afterAll(async () => {
    await agent?.proc.stop();
    expect(await gateway?.proc.stop()).toBe(0);
  });

  for (const protocol of protocols) {
    describe(`public port over ${protocol}`, () => {
      const call = async (token: string | undefined, text = "hello") => {
        const client = createVoxgateClient({ baseUrl: gateway.url, token, protocol });
        try {
          return await client.tts.synthesize({ text });
        } finally {
          client.close();
        }
      };
      const failure = (promise: Promise<unknown>) =>
        promise.then(
          () => {
            throw new Error("expected the call to fail");
          },
          (err: unknown) => ConnectError.from(err),
        );

      it("refuses a missing token", async () => {
        const error = await failure(call(undefined));
        expect(Code[error.code]).toBe("Unauthenticated");
        expect(error.rawMessage).toMatch(/missing token/);
      });

      it("refuses a wrong token", async () => {
        const error = await failure(call(generateToken()));
        expect(Code[error.code]).toBe("Unauthenticated");
      });

      it("refuses an agent token", async () => {
        const error = await failure(call(gateway.agentToken));
        expect(Code[error.code]).toBe("Unauthenticated");
        expect(error.rawMessage).toMatch(/agent port only/);
      });

      it("refuses text over the limit with INVALID_ARGUMENT naming it", async () => {
        const error = await failure(call(gateway.clientToken, "x".repeat(MAX_TEXT_CHARS + 1)));
        expect(Code[error.code]).toBe("InvalidArgument");
        expect(error.rawMessage).toContain(`limit is ${MAX_TEXT_CHARS}`);
        expect(error.rawMessage).toContain("VOXGATE_MAX_TEXT_CHARS");
      });

      it("serves the right token", async () => {
        const clip = await call(gateway.clientToken);
        expect(clip.contentType).toBe("audio/wav");
        expect(clip.data.byteLength).toBeGreaterThan(44);
      });
    });
  }

  it("keeps health open without a token", async () => {
    const client = createVoxgateClient({ baseUrl: gateway.url });
    try {
      const { status } = await client.health.check({ service: "" });
      expect(status).toBe(1); // SERVING
    } finally {
      client.close();
    }
  });

  describe("agent port", () => {
    it("refuses a missing token", async () => {
      const status = await agentPortStatus(gateway.agentPort, undefined);
      expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(status.details).toMatch(/missing agent token/);
    });

    it("refuses a wrong token", async () => {
      const status = await agentPortStatus(gateway.agentPort, generateToken());
      expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
    });

    it("refuses a client token", async () => {
      const status = await agentPortStatus(gateway.agentPort, gateway.clientToken);
      expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(status.details).toMatch(/no agent scope/);
    });

    it("never registers an agent process with a wrong token", async () => {
      const impostor = startAgentProcess(
        { agentPort: gateway.agentPort, agentToken: generateToken() },
        "impostor",
      );
      try {
        const refused = await impostor.proc.waitForLog(
          (l) => l.msg === "could not join the gateway",
          20_000,
        );
        expect(String(refused.reason)).toMatch(/invalid agent token/);
        const client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
        try {
          const ids = (await client.backends.listBackends({})).backends.map((b) => b.id);
          expect(ids).toContain("auth-agent");
          expect(ids).not.toContain("impostor");
        } finally {
          client.close();
        }
      } finally {
        await impostor.proc.stop("SIGKILL");
      }
    });
  });

  it("lists the agent's engine voices", async () => {
    const client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
    try {
      const voices = await waitFor(async () => {
        const page = await client.voices.listVoices({ engine: "espeak-ng", pageSize: 500 });
        return page.voices.length > 0 ? page.voices : undefined;
      });
      expect(voices.map((v) => v.id)).toContain("en-us");
    } finally {
      client.close();
    }
  });
});
