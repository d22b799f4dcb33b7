/**
 * TLS on both ports with real processes and a CA made at run time (openssl): agents dial
 * `https://`, clients speak HTTPS over HTTP/1.1 and h2 (ALPN), and certificates rotate under a
 * running stream. mTLS is in tls-mtls.e2e.test.ts.
 *
 * The issue asks for rotation during a 20 s stream; this test holds the stream open 8 s (the echo
 * engine's `echo.hold_ms`), long enough for two reload rounds, to keep the file's run time down.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { ECHO_PARAMS } from "../../services/engines/echo/echo-engine.js";
import { countEchoMismatches } from "../../services/engines/echo/echo-pattern.js";
import { createTestCa, issueServerCert, type TestCa } from "../helpers/test-pki.js";
import { presentedCertificate, replaceCertFiles, startTlsAgent } from "../helpers/tls-stack.js";
import { CLI_ENTRY } from "../helpers/voxgate-process.js";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";

const run = promisify(execFile);

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

describe("TLS on the public and agent ports (test CA, no client certificates)", () => {
  let dir: string;
  let ca: TestCa;
  let gateway: GatewayProcess;
  let serverCert: ReturnType<typeof issueServerCert>;
  const agents: { proc: { stop(): Promise<unknown> } }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "voxgate-tls-"));
    ca = createTestCa(dir, "test-ca");
    serverCert = issueServerCert(ca, "server");
    gateway = await startGatewayProcess({
      env: {
        VOXGATE_TLS_CERT_FILE: serverCert.certFile,
        VOXGATE_TLS_KEY_FILE: serverCert.keyFile,
        VOXGATE_AGENT_TLS_CERT_FILE: serverCert.certFile,
        VOXGATE_AGENT_TLS_KEY_FILE: serverCert.keyFile,
        VOXGATE_TLS_POLL_INTERVAL_MS: "250",
      },
    });
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.proc.stop()));
    expect(await gateway?.proc.stop()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves https:// with ALPN h2 and http/1.1 and presents the configured certificate", async () => {
    expect(gateway.url).toBe(`https://127.0.0.1:${gateway.publicPort}`);
    const h2 = await presentedCertificate(gateway.publicPort, ca.certFile, ["h2"]);
    const h1 = await presentedCertificate(gateway.publicPort, ca.certFile, ["http/1.1"]);
    expect(h2).toEqual({ fingerprint256: serverCert.fingerprint256, alpnProtocol: "h2" });
    expect(h1).toEqual({ fingerprint256: serverCert.fingerprint256, alpnProtocol: "http/1.1" });
    const agentPort = await presentedCertificate(gateway.agentPort, ca.certFile, ["h2"]);
    expect(agentPort.fingerprint256).toBe(serverCert.fingerprint256);
  });

  it("an agent dialling https:// with --ca-file joins and serves calls over both HTTP versions", async () => {
    const agent = startTlsAgent(
      `https://127.0.0.1:${gateway.agentPort}`,
      "tls-agent",
      { VOXGATE_AGENT_TOKEN: gateway.agentToken },
      ["--ca-file", ca.certFile],
    );
    agents.push(agent);
    const joined = await agent.joined();
    expect(joined.tls).toBe(true);
    expect((joined.gatewayCertificate as { fingerprint256: string }).fingerprint256).toBe(
      serverCert.fingerprint256,
    );
    await gateway.proc.waitForLog((l) => l.msg === "agent ready" && l.agent === "tls-agent");
    for (const [protocol, httpVersion] of [
      ["connect", "1.1"],
      ["connect", "2"],
      ["grpc", "2"],
    ] as const) {
      const client = createVoxgateClient({
        baseUrl: gateway.url,
        token: gateway.clientToken,
        ca: readFileSync(ca.certFile),
        protocol,
        httpVersion,
      });
      try {
        const result = await synthesizeEcho(client, 300_000);
        expect(result, `${protocol} over HTTP/${httpVersion}`).toEqual({
          received: 300_000,
          mismatches: 0,
        });
      } finally {
        client.close();
      }
    }
    // curl, as the README shows it: HTTP/1.1 and h2 over TLS, trusting the test CA.
    for (const flag of ["--http1.1", "--http2"]) {
      const { stdout } = await run("curl", [
        "-sS",
        flag,
        "--cacert",
        ca.certFile,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version}",
        "-H",
        `Authorization: Bearer ${gateway.clientToken}`,
        "-H",
        "Content-Type: application/json",
        "-d",
        JSON.stringify({ text: "curl over tls", params: { [ECHO_PARAMS.bytes]: "1000" } }),
        `${gateway.url}/voxgate.v1.TtsService/Synthesize`,
      ]);
      expect(stdout).toBe(flag === "--http2" ? "200 2" : "200 1.1");
    }
  }, 60_000);

  it("the CLI trusts a private CA with --ca-file, and fails without it", async () => {
    const health = await run(
      process.execPath,
      [CLI_ENTRY, "health", "--url", gateway.url, "--ca-file", ca.certFile],
      { env: { ...process.env, VOXGATE_CA_FILE: "" } },
    );
    expect(health.stdout.trim()).toBe("SERVING");
    const untrusted = await run(process.execPath, [CLI_ENTRY, "health", "--url", gateway.url]).then(
      () => "succeeded",
      (err: { stderr: string }) => err.stderr,
    );
    expect(untrusted).toMatch(/certificate/i);
  }, 60_000);

  it("an agent that does not trust the gateway's CA is refused by its own TLS check", async () => {
    const agent = startTlsAgent(`https://127.0.0.1:${gateway.agentPort}`, "untrusting", {
      VOXGATE_AGENT_TOKEN: gateway.agentToken,
    });
    agents.push(agent);
    const refused = await agent.refused();
    await agent.proc.stop();
    expect(String(refused.reason)).toMatch(/certificate/i);
    expect(agent.proc.logs.some((l) => l.msg === "connected to gateway")).toBe(false);
  }, 60_000);

  it("rotates certificates under an 8 s stream: it completes byte-exact, new connections get the new certificate", async () => {
    const client = createVoxgateClient({
      baseUrl: gateway.url,
      token: gateway.clientToken,
      ca: readFileSync(ca.certFile),
      httpVersion: "2",
      timeoutMs: 60_000,
    });
    const rotated = issueServerCert(ca, "server-rotated");
    expect(rotated.fingerprint256).not.toBe(serverCert.fingerprint256);
    try {
      let rotate: Promise<void> | undefined;
      const stream = synthesizeEcho(client, 2_000_000, { [ECHO_PARAMS.holdMs]: "8000" }, () => {
        // Audio is flowing over TLS on both links; swap the files under it.
        rotate = (async () => {
          replaceCertFiles(rotated, serverCert);
          await gateway.proc.waitForLog(
            (l) =>
              l.msg === "TLS certificate reloaded; new connections use it" &&
              l.purpose === "agent port" &&
              l.fingerprint256 === rotated.fingerprint256,
            10_000,
          );
          await gateway.proc.waitForLog(
            (l) =>
              l.msg === "TLS certificate reloaded; new connections use it" &&
              l.purpose === "public port" &&
              l.fingerprint256 === rotated.fingerprint256,
            10_000,
          );
        })();
      });
      const result = await stream;
      await rotate;
      expect(result).toEqual({ received: 2_000_000, mismatches: 0 });
    } finally {
      client.close();
    }
    // New connections present the new certificate on both ports.
    expect((await presentedCertificate(gateway.publicPort, ca.certFile)).fingerprint256).toBe(
      rotated.fingerprint256,
    );
    expect((await presentedCertificate(gateway.agentPort, ca.certFile)).fingerprint256).toBe(
      rotated.fingerprint256,
    );
    // The agent that joined before the rotation kept its link (no reconnect), and a new agent
    // sees the new certificate in its handshake.
    const first = gateway.proc.logs.filter(
      (l) => l.msg === "agent joined" && l.agent === "tls-agent",
    );
    expect(first).toHaveLength(1);
    // This one trusts the test CA through NODE_EXTRA_CA_CERTS instead of --ca-file.
    const late = startTlsAgent(`https://127.0.0.1:${gateway.agentPort}`, "after-rotation", {
      VOXGATE_AGENT_TOKEN: gateway.agentToken,
      NODE_EXTRA_CA_CERTS: ca.certFile,
    });
    agents.push(late);
    const joined = await late.joined();
    expect((joined.gatewayCertificate as { fingerprint256: string }).fingerprint256).toBe(
      rotated.fingerprint256,
    );
  }, 60_000);
});
