/**
 * Agents are untrusted (issue 20, item 4): a fake hostile agent (a grpc-js client speaking
 * AgentService with a valid agent token, test/hostile/hostile-agent.ts) against a real gateway
 * on 127.0.0.1. Its hello claims are clamped (slots 2³¹−1 and −5, priority −100, 20,000 preset
 * voices), the OpenAI voice list stays paged and small, a status code 999 and a 100 KB `<script>`
 * message reach REST clients as a known code with a short escaped message, and a malformed audio
 * format (sample rate −1, content type with CRLF) fails over to the next agent instead of a 500.
 */
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { hashToken } from "../../services/auth/token-codec.js";
import {
  createGateway,
  type Gateway,
  type GatewayAddresses,
} from "../../services/gateway/index.js";
import { kTestGatewayLimits } from "../helpers/test-limits.js";
import {
  type HostileAgent,
  type HostileAgentOptions,
  helloOf,
  type SynthesizeBehaviour,
  startHostileAgent,
} from "./hostile-agent.js";

const CLIENT_TOKEN = "vxg_hostile-agent-client";
const AGENT_TOKEN = "vxg_hostile-agent-agent";
/** An agent token whose agents may only claim priorities 500..800 (a shared, less trusted pool). */
const POOL_TOKEN = "vxg_hostile-agent-pool";
const silent = pino({ level: "silent" });

const openAgents: HostileAgent[] = [];
const openGateways: Gateway[] = [];

afterEach(async () => {
  for (const agent of openAgents.splice(0)) agent.close();
  await Promise.all(openGateways.splice(0).map((gateway) => gateway.close(500)));
});

async function startGateway(): Promise<{ gateway: Gateway } & GatewayAddresses> {
  const gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [
      { name: "client", sha256: hashToken(CLIENT_TOKEN), scopes: ["tts", "voices", "admin"] },
      { name: "gpu-hosts", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] },
      {
        name: "shared-pool",
        sha256: hashToken(POOL_TOKEN),
        scopes: ["agent"],
        agentMinPriority: 500,
        agentMaxPriority: 800,
      },
    ],
    limits: kTestGatewayLimits,
    log: silent,
  });
  openGateways.push(gateway);
  return { gateway, ...(await gateway.listen()) };
}

async function agent(
  started: { gateway: Gateway; agentPort: number },
  hello: HostileAgentOptions["hello"],
  synthesize: SynthesizeBehaviour,
  token = AGENT_TOKEN,
): Promise<HostileAgent> {
  const running = await startHostileAgent({
    agentPort: started.agentPort,
    token,
    hello,
    synthesize,
  });
  openAgents.push(running);
  const id = String(hello.agentId);
  const deadline = performance.now() + 10_000;
  while (started.gateway.registry.get(id)?.state !== BackendState.READY) {
    if (performance.now() > deadline) throw new Error(`agent ${id} never became ready`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return running;
}

const speak = (publicUrl: string) =>
  fetch(`${publicUrl}/v1/speech:synthesize`, {
    method: "POST",
    headers: { authorization: `Bearer ${CLIENT_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ text: "Hello there." }),
  });

describe("a hostile agent", () => {
  it("has its slots, priority and preset voices clamped; the OpenAI voice list stays paged", async () => {
    const started = await startGateway();
    await agent(
      started,
      helloOf("greedy", { slots: 2 ** 31 - 1, priority: -100, voices: 20_000 }),
      {
        kind: "ok",
      },
    );
    await agent(started, helloOf("tiny", { slots: -5, priority: 5000 }), { kind: "ok" });
    const greedy = started.gateway.registry.get("greedy");
    const tiny = started.gateway.registry.get("tiny");
    expect(greedy?.capabilities.slots).toBe(256);
    expect(greedy?.priority).toBe(0);
    expect(greedy?.capabilities.engines[0]?.voices.length).toBe(1000);
    expect(tiny?.capabilities.slots).toBe(1);
    expect(tiny?.priority).toBe(1000);

    const response = await fetch(`${started.publicUrl}/v1/audio/voices`, {
      headers: { authorization: `Bearer ${CLIENT_TOKEN}` },
    });
    const text = await response.text();
    const body = JSON.parse(text) as { voices: unknown[]; has_more: boolean; next_page?: string };
    // Before: 20,000 voices in one 4.8 MB answer.
    expect(body.voices.length).toBeLessThanOrEqual(1000);
    expect(text.length).toBeLessThan(400_000);
    const next = await fetch(
      `${started.publicUrl}/v1/audio/voices?limit=10&after=${encodeURIComponent(body.next_page ?? "")}`,
      { headers: { authorization: `Bearer ${CLIENT_TOKEN}` } },
    );
    expect(next.status).toBe(200);
    const page = (await next.json()) as { voices: unknown[] };
    expect(page.voices.length).toBeLessThanOrEqual(10);
  });

  it("holds an agent token's agents to that token's priority range", async () => {
    const started = await startGateway();
    await agent(started, helloOf("pushy", { priority: -100 }), { kind: "ok" }, POOL_TOKEN);
    await agent(started, helloOf("lazy", { priority: 5000 }), { kind: "ok" }, POOL_TOKEN);
    await agent(started, helloOf("inside", { priority: 600 }), { kind: "ok" }, POOL_TOKEN);
    await agent(started, helloOf("trusted", { priority: 5 }), { kind: "ok" });
    // The pool's −100 claim is raised to the token's 500, not the gateway-wide 0: its agents
    // can never outrank the trusted token's priority 5.
    expect(started.gateway.registry.get("pushy")?.priority).toBe(500);
    expect(started.gateway.registry.get("lazy")?.priority).toBe(800);
    expect(started.gateway.registry.get("inside")?.priority).toBe(600);
    expect(started.gateway.registry.get("trusted")?.priority).toBe(5);
    const response = await speak(started.publicUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-voxgate-backend")).toBe("trusted");
  });

  it("ends calls with status 999 and a 100 KB <script>: a known code, short and escaped", async () => {
    const started = await startGateway();
    const script = `<script>alert(1)</script>${"x".repeat(100 * 1024)}`;
    await agent(started, helloOf("shouty"), { kind: "status", code: 999, message: script });
    const response = await speak(started.publicUrl);
    const text = await response.text();
    // UNKNOWN is a backend fault: the call fails over, and with no other agent it ends as a
    // server error naming the code the agent sent.
    expect(response.status).toBeGreaterThanOrEqual(500);
    const body = JSON.parse(text) as { code: number; message: string };
    expect(body.message).toContain("unknown status code 999");
    expect(body.message).toContain("&lt;script&gt;");
    expect(text).not.toContain("<script>");
    expect(text.length).toBeLessThan(4096);
  });

  it("passes a known code through with its message cut and escaped", async () => {
    const started = await startGateway();
    await agent(started, helloOf("picky"), {
      kind: "status",
      code: 3,
      message: `<img src=x onerror=alert(1)>\r\n${"y".repeat(100 * 1024)}`,
    });
    const response = await speak(started.publicUrl);
    const text = await response.text();
    expect(response.status).toBe(400);
    expect(text).not.toContain("<img");
    expect(text).not.toContain("\\r\\n");
    expect(text.length).toBeLessThan(4096);
  });

  it.each([
    ["sample rate −1", { sampleRateHz: -1, channels: 1, contentType: "audio/L16" }],
    [
      "a content type with CRLF",
      { sampleRateHz: 16_000, channels: 1, contentType: "audio/wav\r\nx-evil: 1" },
    ],
    ["zero channels", { sampleRateHz: 16_000, channels: 0, contentType: "audio/L16" }],
  ])("with a malformed format (%s) fails over to the next agent", async (_name, format) => {
    const started = await startGateway();
    // Priority −100 is clamped to 0, which still beats the honest agent's 5: the hostile one
    // gets the call first.
    const hostile = await agent(started, helloOf("mangler", { priority: -100 }), {
      kind: "format",
      ...format,
    });
    await agent(started, helloOf("honest", { priority: 5 }), { kind: "ok" });
    const response = await speak(started.publicUrl);
    const audio = new Uint8Array(await response.arrayBuffer());
    expect(response.status).toBe(200);
    expect(response.headers.get("x-voxgate-backend")).toBe("honest");
    expect(hostile.synthesizeCalls).toBe(1);
    expect(String.fromCharCode(...audio.subarray(0, 4))).toBe("RIFF");
  });
});
