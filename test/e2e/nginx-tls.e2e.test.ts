/**
 * voxgate behind a real nginx (Debian's 1.22, started by this test, unprivileged) terminating TLS:
 * an agent dials nginx over `https://` and nginx passes gRPC on to the agent port (`grpc_pass`);
 * clients reach the public port through nginx over HTTP/1.1 and h2. The config is
 * test/nginx/voxgate.conf, the one the README shows.
 *
 * Keepalives: the agent pings nginx every 5 s (its shortest allowed interval) while the link is
 * held for 12 s; grpc-js's keepalive trace proves the pings went out and were answered, and the
 * link never dropped.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient } from "../../clients/voxgate-client.js";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { ECHO_PARAMS } from "../../services/engines/echo/echo-engine.js";
import { countEchoMismatches } from "../../services/engines/echo/echo-pattern.js";
import { createTestCa, issueServerCert, type TestCa } from "../helpers/test-pki.js";
import { presentedCertificate, startTlsAgent } from "../helpers/tls-stack.js";
import { waitFor } from "../helpers/voxgate-process.js";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";

const run = promisify(execFile);
const NGINX = "/usr/sbin/nginx";
const CONFIG_TEMPLATE = new URL("../nginx/voxgate.conf", import.meta.url);
/** How long the agent link is held through nginx before keepalives are counted, in ms. */
const HOLD_MS = 12_000;

/** A port that was free a moment ago (nginx needs fixed ports in its config). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

it("the README shows the nginx config this test runs, verbatim", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const shown = /<!-- nginx-config: test\/nginx\/voxgate.conf -->\n```nginx\n([\s\S]*?)```/.exec(
    readme,
  );
  expect(shown?.[1]).toBe(readFileSync(CONFIG_TEMPLATE, "utf8"));
});

describe.skipIf(!existsSync(NGINX))("through nginx terminating TLS", () => {
  let dir: string;
  let runDir: string;
  let configFile: string;
  let ca: TestCa;
  let gateway: GatewayProcess;
  let agentTlsPort: number;
  let publicTlsPort: number;
  let agent: ReturnType<typeof startTlsAgent>;
  let joinedAt = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "voxgate-nginx-"));
    runDir = join(dir, "run");
    mkdirSync(runDir);
    ca = createTestCa(dir, "ca");
    const cert = issueServerCert(ca, "nginx");
    gateway = await startGatewayProcess();
    [agentTlsPort, publicTlsPort] = [await freePort(), await freePort()];
    const config = readFileSync(CONFIG_TEMPLATE, "utf8")
      .replaceAll("@RUN_DIR@", runDir)
      .replaceAll("@CERT_FILE@", cert.certFile)
      .replaceAll("@KEY_FILE@", cert.keyFile)
      .replaceAll("@AGENT_TLS_PORT@", String(agentTlsPort))
      .replaceAll("@AGENT_PORT@", String(gateway.agentPort))
      .replaceAll("@PUBLIC_TLS_PORT@", String(publicTlsPort))
      .replaceAll("@PUBLIC_PORT@", String(gateway.publicPort));
    expect(config).not.toMatch(/@[A-Z_]+@/);
    configFile = join(dir, "nginx.conf");
    writeFileSync(configFile, config);
    // -e: the error log before the config is read (the default path needs root).
    execFileSync(NGINX, ["-c", configFile, "-p", runDir, "-e", join(runDir, "error.log")]);
    await waitFor(async () => (await portOpen(agentTlsPort)) && (await portOpen(publicTlsPort)), {
      what: "nginx listening",
    });
  });

  afterAll(async () => {
    await agent?.proc.stop();
    if (configFile && existsSync(join(runDir, "nginx.pid"))) {
      execFileSync(NGINX, [
        "-c",
        configFile,
        "-p",
        runDir,
        "-e",
        join(runDir, "error.log"),
        "-s",
        "stop",
      ]);
    }
    expect(await gateway?.proc.stop()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it("an agent dials nginx over https:// and joins through grpc_pass", async () => {
    // nginx presents its certificate on both listeners.
    expect((await presentedCertificate(agentTlsPort, ca.certFile, ["h2"])).alpnProtocol).toBe("h2");
    agent = startTlsAgent(
      `https://127.0.0.1:${agentTlsPort}`,
      "behind-nginx",
      {
        VOXGATE_AGENT_TOKEN: gateway.agentToken,
        // grpc-js logs each keepalive ping and its answer on stderr.
        GRPC_TRACE: "keepalive",
        GRPC_VERBOSITY: "DEBUG",
      },
      ["--ca-file", ca.certFile, "--gateway-keepalive-ms", "5000"],
    );
    const joined = await agent.joined();
    joinedAt = performance.now();
    expect(joined.tls).toBe(true);
    await gateway.proc.waitForLog((l) => l.msg === "agent ready" && l.agent === "behind-nginx");
  });

  it("clients reach the public port through nginx: Connect unary and streams over HTTP/1.1 and h2, gRPC, REST", async () => {
    const ca_ = readFileSync(ca.certFile);
    const baseUrl = `https://127.0.0.1:${publicTlsPort}`;
    for (const [protocol, httpVersion] of [
      ["connect", "1.1"],
      ["connect", "2"],
      ["grpc-web", "1.1"],
      ["grpc", "2"],
    ] as const) {
      const client = createVoxgateClient({
        baseUrl,
        token: gateway.clientToken,
        ca: ca_,
        protocol,
        httpVersion,
      });
      const what = `${protocol} over HTTP/${httpVersion}`;
      try {
        const clip = await client.tts.synthesize({
          text: "unary through nginx",
          encoding: AudioEncoding.PCM,
          params: { [ECHO_PARAMS.bytes]: "20000" },
        });
        expect(clip.data.byteLength, what).toBe(20_000);
        let received = 0;
        let mismatches = 0;
        for await (const chunk of client.tts.streamSynthesize({
          text: "stream through nginx",
          encoding: AudioEncoding.PCM,
          params: { [ECHO_PARAMS.bytes]: "1500000" },
        })) {
          mismatches += countEchoMismatches(chunk.data, received);
          received += chunk.data.byteLength;
        }
        expect({ received, mismatches }, what).toEqual({ received: 1_500_000, mismatches: 0 });
      } finally {
        client.close();
      }
    }
    for (const flag of ["--http1.1", "--http2"]) {
      const { stdout } = await run("curl", [
        "-sS",
        flag,
        "--cacert",
        ca.certFile,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version} %{size_download}",
        "-X",
        "POST",
        `${baseUrl}/v1/speech:stream`,
        "-H",
        `Authorization: Bearer ${gateway.clientToken}`,
        "-H",
        "Content-Type: application/json",
        "-d",
        JSON.stringify({
          text: "REST through nginx",
          encoding: "AUDIO_ENCODING_PCM",
          params: { [ECHO_PARAMS.bytes]: "64000" },
        }),
      ]);
      expect(stdout, `REST ${flag}`).toBe(`200 ${flag === "--http2" ? "2" : "1.1"} 64000`);
    }
  });

  it(`holds the agent link through nginx for ${HOLD_MS / 1000} s with keepalive pings answered`, async () => {
    const left = HOLD_MS - (performance.now() - joinedAt);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    const trace = agent.proc.stderr();
    const sent = trace.match(/Sending ping/g)?.length ?? 0;
    const answered = trace.match(/Received ping response/g)?.length ?? 0;
    console.info(
      `[figures] keepalive through nginx in ${HOLD_MS} ms: ${sent} sent, ${answered} answered`,
    );
    expect(sent).toBeGreaterThanOrEqual(2);
    expect(answered).toBeGreaterThanOrEqual(sent - 1);
    expect(trace).not.toMatch(/Ping timeout passed|Ping failed/);
    // One join, no loss, still routed to.
    expect(agent.proc.logs.filter((l) => l.msg === "connected to gateway")).toHaveLength(1);
    expect(agent.proc.logs.some((l) => l.msg === "lost the gateway")).toBe(false);
    const client = createVoxgateClient({
      baseUrl: `https://127.0.0.1:${publicTlsPort}`,
      token: gateway.clientToken,
      ca: readFileSync(ca.certFile),
    });
    try {
      const clip = await client.tts.synthesize({
        text: "still there",
        encoding: AudioEncoding.PCM,
        params: { [ECHO_PARAMS.bytes]: "1000" },
      });
      expect(clip.data.byteLength).toBe(1000);
    } finally {
      client.close();
    }
  }, 40_000);
});
