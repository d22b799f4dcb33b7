/**
 * Health over plain HTTP on a real gateway process, as a load balancer probes it: /healthz is up
 * from the start; /readyz and the TtsService status turn ready only once an agent can synthesize,
 * and go back when it leaves; none needs a token.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

const TTS = "voxgate.v1.TtsService";

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("health routes of a real gateway", () => {
  let gateway: GatewayProcess;

  beforeAll(async () => {
    gateway = await startGatewayProcess();
  });

  afterAll(async () => {
    expect(await gateway?.proc.stop()).toBe(0);
  });

  it("reports the process live, but not ready and TtsService not serving, with no backend", async () => {
    expect(await get(`${gateway.url}/healthz`)).toEqual({ status: 200, body: { status: "ok" } });
    // The embedded database opens at start, before any call needs it ("opening" until then).
    // PGlite takes 1-3 s to open on a quiet machine and was seen past 30 s under full CI load.
    const opened = await gateway.proc.waitForLog((l) => l.msg === "database open", 120_000);
    expect(opened.kind).toBe("pglite");
    const ready = await get(`${gateway.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({
      status: "not ready",
      checks: { accepting: "ok", database: "ok", backends: "no READY backend can synthesize" },
    });
    expect(await get(`${gateway.url}/healthz?service=${TTS}`)).toEqual({
      status: 503,
      body: { service: TTS, status: "NOT_SERVING" },
    });
    expect((await get(`${gateway.url}/healthz?service=voxgate.v1.VoiceService`)).status).toBe(200);
    expect((await get(`${gateway.url}/healthz?service=no.Such`)).status).toBe(404);
    const head = await fetch(`${gateway.url}/readyz`, { method: "HEAD" });
    expect(head.status).toBe(503);
    expect(await head.text()).toBe("");
  }, 150_000);

  it("turns ready when an agent can synthesize, and back when it leaves", async () => {
    const agent = startAgentProcess(gateway, "health-agent", { VOXGATE_AGENT_ENGINE: "echo" });
    await agent.connected;
    await waitFor(async () => (await get(`${gateway.url}/readyz`)).status === 200, {
      timeoutMs: 20_000,
      what: "/readyz 200",
    });
    expect((await get(`${gateway.url}/readyz`)).body).toEqual({
      status: "ready",
      checks: { accepting: "ok", database: "ok", backends: "ok" },
    });
    expect((await get(`${gateway.url}/healthz?service=${TTS}`)).status).toBe(200);
    await agent.proc.stop();
    await waitFor(async () => (await get(`${gateway.url}/readyz`)).status === 503, {
      timeoutMs: 20_000,
      what: "/readyz 503 after the agent left",
    });
  });
});
