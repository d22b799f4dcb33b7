/**
 * The echo engine behind the real engine host, over an in-memory Connect transport: request params
 * reach the engine, and a bad param is INVALID_ARGUMENT before any audio leaves.
 */
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { GPUBackendService } from "../../../gen/voxgate/v1/gpu_backend_pb.js";
import { agentSettings } from "../../agent/agent-settings.js";
import { settingDefaults } from "../../config/settings.js";
import { engineHostLimitsFromSettings } from "../../engine-host/engine-host-handler.js";
import { createEngineHost } from "../../engine-host/index.js";
import { createEchoEngine } from "./echo-engine.js";
import { countEchoMismatches } from "./echo-pattern.js";

function hostClient() {
  const host = createEngineHost({
    ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
    engines: [createEchoEngine()],
    slots: 2,
  });
  const transport = createRouterTransport(({ service }) => {
    service(GPUBackendService, host.handler);
  });
  return { host, client: createClient(GPUBackendService, transport) };
}

describe("echo engine in the engine host", () => {
  it("streams the size asked for in params, byte-exact, and reports it in the summary", async () => {
    const { client, host } = hostClient();
    const params = { "echo.bytes": "200000", "echo.chunk_bytes": "50000" };
    let received = 0;
    let mismatches = 0;
    let summaryBytes = -1n;
    for await (const piece of client.synthesize({ text: "x", params })) {
      if (piece.kind.case === "audio") {
        mismatches += countEchoMismatches(piece.kind.value, received);
        received += piece.kind.value.byteLength;
      }
      if (piece.kind.case === "summary") summaryBytes = piece.kind.value.audioBytes;
    }
    expect(received).toBe(200_000);
    expect(mismatches).toBe(0);
    expect(summaryBytes).toBe(200_000n);
    expect(host.inFlight).toBe(0);
  });

  it("answers INVALID_ARGUMENT for a size over the cap, sends no audio and frees the slot", async () => {
    const { client, host } = hostClient();
    const audio: number[] = [];
    const error = await (async () => {
      for await (const piece of client.synthesize({
        text: "x",
        params: { "echo.bytes": "999999999999" },
      })) {
        if (piece.kind.case === "audio") audio.push(piece.kind.value.byteLength);
      }
    })().catch((err: unknown) => ConnectError.from(err));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toContain("echo.bytes");
    expect(audio).toEqual([]);
    expect(host.inFlight).toBe(0);
  });
});
