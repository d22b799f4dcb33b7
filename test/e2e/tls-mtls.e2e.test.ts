/**
 * mTLS on the agent port with real processes and CAs made at run time (openssl): the right client
 * certificate joins (CN or SAN naming the agent id), one from another CA, none at all, or one naming
 * another agent is refused with a clear error; SIGHUP reloads the server certificate while agents
 * stay connected.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { ECHO_PARAMS } from "../../services/engines/echo/echo-engine.js";
import { countEchoMismatches } from "../../services/engines/echo/echo-pattern.js";
import { createTestCa, issueCert, issueServerCert, type TestCa } from "../helpers/test-pki.js";
import { presentedCertificate, replaceCertFiles, startTlsAgent } from "../helpers/tls-stack.js";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";

async function synthesizeEcho(
  client: VoxgateClient,
  bytes: number,
  extra: Record<string, string> = {},
  onFirst?: () => void,
): Promise<{ received: number; mismatches: number }> {
  let received = 0;
  let mismatches = 0;
  for await (const chunk of client.tts.streamSynthesize({
    text: "tls",
    encoding: AudioEncoding.PCM,
    params: { [ECHO_PARAMS.bytes]: String(bytes), ...extra },
  })) {
    if (received === 0) onFirst?.();
    mismatches += countEchoMismatches(chunk.data, received);
    received += chunk.data.byteLength;
  }
  return { received, mismatches };
}

describe("mTLS on the agent port (client CA, identity matched to the agent id)", () => {
  let dir: string;
  let serverCa: TestCa;
  let agentCa: TestCa;
  let rogueCa: TestCa;
  let gateway: GatewayProcess;
  let serverCert: ReturnType<typeof issueServerCert>;
  const agents: { proc: { stop(): Promise<unknown> } }[] = [];
  const dial = (id: string, cert?: { certFile: string; keyFile: string }) => {
    const agent = startTlsAgent(
      `https://127.0.0.1:${gateway.agentPort}`,
      id,
      { VOXGATE_AGENT_TOKEN: gateway.agentToken },
      [
        "--ca-file",
        serverCa.certFile,
        ...(cert ? ["--client-cert-file", cert.certFile, "--client-key-file", cert.keyFile] : []),
      ],
    );
    agents.push(agent);
    return agent;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "voxgate-mtls-"));
    serverCa = createTestCa(dir, "server-ca");
    agentCa = createTestCa(dir, "agent-ca");
    rogueCa = createTestCa(dir, "rogue-ca");
    serverCert = issueServerCert(serverCa, "server");
    gateway = await startGatewayProcess({
      env: {
        VOXGATE_AGENT_TLS_CERT_FILE: serverCert.certFile,
        VOXGATE_AGENT_TLS_KEY_FILE: serverCert.keyFile,
        VOXGATE_AGENT_CLIENT_CA_FILE: agentCa.certFile,
        VOXGATE_AGENT_CERT_MATCH_ID: "true",
        // Only SIGHUP reloads here.
        VOXGATE_TLS_POLL_INTERVAL_MS: "0",
      },
    });
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.proc.stop()));
    expect(await gateway?.proc.stop()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it("the public port stays cleartext when only the agent port has TLS", () => {
    expect(gateway.url).toBe(`http://127.0.0.1:${gateway.publicPort}`);
  });

  it("an agent with a certificate from the agent CA naming its id joins and serves", async () => {
    const cert = issueCert(agentCa, { name: "gpu-1", cn: "gpu-1", client: true });
    const agent = dial("gpu-1", cert);
    await agent.joined();
    await gateway.proc.waitForLog((l) => l.msg === "agent ready" && l.agent === "gpu-1");
    const client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
    try {
      expect(await synthesizeEcho(client, 100_000)).toEqual({ received: 100_000, mismatches: 0 });
    } finally {
      client.close();
    }
  });

  it("a SAN naming the id works too (CN is something else)", async () => {
    const cert = issueCert(agentCa, {
      name: "gpu-san",
      cn: "GPU box in the basement",
      altNames: ["DNS:gpu-san.agents.example", "URI:spiffe://example.org/agent/gpu-san"],
      client: true,
    });
    await dial("gpu-san", cert).joined();
  });

  it("refuses a certificate from another CA with UNAUTHENTICATED and says why", async () => {
    const cert = issueCert(rogueCa, { name: "rogue", cn: "gpu-2", client: true });
    const agent = dial("gpu-2", cert);
    const refused = await agent.refused();
    await agent.proc.stop();
    expect(String(refused.reason)).toContain(
      "the agent port requires a client certificate signed by its client CA",
    );
    await gateway.proc.waitForLog(
      (l) => l.msg === "agent connection without a trusted client certificate",
    );
    expect(gateway.proc.logs.some((l) => l.msg === "agent joined" && l.agent === "gpu-2")).toBe(
      false,
    );
  });

  it("refuses an agent without a client certificate", async () => {
    const agent = dial("no-cert");
    const refused = await agent.refused();
    await agent.proc.stop();
    expect(String(refused.reason)).toContain("presented none or an untrusted one");
  });

  it("refuses a trusted certificate that names another agent with PERMISSION_DENIED", async () => {
    const cert = issueCert(agentCa, { name: "gpu-3", cn: "gpu-3", client: true });
    const agent = dial("gpu-4", cert);
    const refused = await agent.refused();
    await agent.proc.stop();
    expect(String(refused.reason)).toContain(
      'client certificate names "gpu-3", not agent id "gpu-4"',
    );
    expect(gateway.proc.logs.some((l) => l.msg === "agent joined" && l.agent === "gpu-4")).toBe(
      false,
    );
  });

  it("SIGHUP reloads the agent port's certificate; established agents stay", async () => {
    const rotated = issueServerCert(serverCa, "server-rotated");
    replaceCertFiles(rotated, serverCert);
    // Polling is off: nothing changes until the signal.
    expect((await presentedCertificate(gateway.agentPort, serverCa.certFile)).fingerprint256).toBe(
      serverCert.fingerprint256,
    );
    gateway.proc.child.kill("SIGHUP");
    await gateway.proc.waitForLog(
      (l) =>
        l.msg === "TLS certificate reloaded; new connections use it" &&
        l.fingerprint256 === rotated.fingerprint256,
    );
    expect((await presentedCertificate(gateway.agentPort, serverCa.certFile)).fingerprint256).toBe(
      rotated.fingerprint256,
    );
    const client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
    try {
      expect(await synthesizeEcho(client, 50_000)).toEqual({ received: 50_000, mismatches: 0 });
    } finally {
      client.close();
    }
    // The agents that joined before the reload are still the same sessions.
    expect(
      gateway.proc.logs.filter(
        (l) => l.msg === "agent session closed" && (l.agent === "gpu-1" || l.agent === "gpu-san"),
      ),
    ).toEqual([]);
  });
});
