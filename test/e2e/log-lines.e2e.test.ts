/**
 * Every log line a real gateway and agent write during a short session is one valid JSON object
 * without duplicate keys (a strict parser, not JSON.parse, which keeps the last duplicate), the
 * access line of a call says who called from where, which backend served it, after how many
 * attempts, how many bytes and when the first audio left, and no line carries a token.
 */
import jsonlint from "@prantlf/jsonlint";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient } from "../../clients/voxgate-client.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

describe("log lines of a gateway and an agent", () => {
  let gateway: GatewayProcess;
  let agent: ReturnType<typeof startAgentProcess>;

  beforeAll(async () => {
    gateway = await startGatewayProcess();
    agent = startAgentProcess(gateway, "log-agent", { VOXGATE_AGENT_ENGINE: "echo" });
    await agent.connected;
    const client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
    try {
      let bytes = 0;
      for await (const chunk of client.tts.streamSynthesize({
        text: "hello",
        params: { "echo.bytes": "100000", "echo.chunk_bytes": "10000" },
      })) {
        bytes += chunk.data.byteLength;
      }
      expect(bytes).toBeGreaterThanOrEqual(100_000);
    } finally {
      client.close();
    }
    await fetch(`${gateway.url}/v1/audio/speech`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ model: "tts-1", voice: "alloy", input: "hi", response_format: "wav" }),
    }).then((res) => res.arrayBuffer());
    await gateway.proc.waitForLog(
      (l) => l.msg === "call" && l.method === "voxgate.v1.TtsService/StreamSynthesize",
    );
  }, 120_000);

  afterAll(async () => {
    await agent?.proc.stop();
    await gateway?.proc.stop();
  });

  it("writes only JSON objects without duplicate keys", () => {
    const lines = [...gateway.proc.rawLines, ...agent.proc.rawLines].filter((l) => l.trim());
    expect(lines.length).toBeGreaterThan(10);
    const bad = lines.flatMap((line) => {
      try {
        jsonlint.parse(line, { allowDuplicateObjectKeys: false });
        return [];
      } catch (err) {
        return [`${(err as Error).message.split("\n").at(-1)}: ${line.slice(0, 200)}`];
      }
    });
    expect(bad).toEqual([]);
  });

  it("logs each call with caller, client address, backend, attempts, bytes and first audio", () => {
    const call = gateway.proc.logs.find(
      (l) => l.msg === "call" && l.method === "voxgate.v1.TtsService/StreamSynthesize",
    );
    expect(call).toMatchObject({
      code: "ok",
      backend: "log-agent",
      attempts: 1,
      client: "127.0.0.1",
    });
    expect(Number(call?.bytes)).toBeGreaterThanOrEqual(100_000);
    expect(Number(call?.firstAudioMs)).toBeGreaterThanOrEqual(0);
    expect(Number(call?.firstAudioMs)).toBeLessThanOrEqual(Number(call?.ms));
  });

  it("never writes a token", () => {
    const all = [...gateway.proc.rawLines, ...agent.proc.rawLines].join("\n");
    expect(all).not.toContain(gateway.clientToken);
    expect(all).not.toContain(gateway.agentToken);
  });
});
