/**
 * TLS handshake cost on the first audio byte: time from "new client" to the first audio chunk of
 * a streamed call with the echo engine (16 KiB answer), on a cleartext gateway and on one with
 * TLS on both ports (agent dialling https://, EC P-256 certificates from a throwaway CA). Each
 * call opens a new connection (TCP + TLS handshake + call), over HTTP/1.1 (Connect) and h2
 * (gRPC); a warm row reuses one connection, where TLS should cost next to nothing.
 *
 *   node --import tsx bench/tls-first-byte.ts [--reps N] [--quick]
 *   npm run bench -- --only tls-first-byte
 *
 * Prints a table and one JSON line of figures.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { parseArgs } from "node:util";
import { createVoxgateClient, type VoxgateClientOptions } from "../clients/voxgate-client.js";
import { AudioEncoding } from "../gen/voxgate/v1/audio_pb.js";
import { ECHO_PARAMS } from "../services/engines/echo/echo-engine.js";
import { createTestCa, issueServerCert } from "../test/helpers/test-pki.js";
import { startTlsAgent } from "../test/helpers/tls-stack.js";
import { type GatewayProcess, startGatewayProcess } from "../test/helpers/voxgate-stack.js";

const { values } = parseArgs({
  options: { reps: { type: "string" }, quick: { type: "boolean" } },
});
const reps = Number(values.reps ?? (values.quick ? 10 : 40));
const WARMUP = 3;

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function firstByteMs(client: ReturnType<typeof createVoxgateClient>): Promise<number> {
  const sent = performance.now();
  let first = 0;
  for await (const _chunk of client.tts.streamSynthesize({
    text: "first byte",
    encoding: AudioEncoding.PCM,
    params: { [ECHO_PARAMS.bytes]: "16384" },
  })) {
    if (first === 0) first = performance.now() - sent;
  }
  return first;
}

const dir = mkdtempSync(join(tmpdir(), "voxgate-bench-tls-"));
const ca = createTestCa(dir, "bench-ca");
const cert = issueServerCert(ca, "bench-server");
const stacks: Array<{ name: string; gateway: GatewayProcess; stopAgent: () => Promise<unknown> }> =
  [];
try {
  for (const name of ["cleartext", "tls"] as const) {
    const gateway = await startGatewayProcess({
      env:
        name === "tls"
          ? {
              VOXGATE_TLS_CERT_FILE: cert.certFile,
              VOXGATE_TLS_KEY_FILE: cert.keyFile,
              VOXGATE_AGENT_TLS_CERT_FILE: cert.certFile,
              VOXGATE_AGENT_TLS_KEY_FILE: cert.keyFile,
            }
          : {},
      readyTimeoutMs: 60_000,
    });
    const agent = startTlsAgent(
      `${name === "tls" ? "https" : "http"}://127.0.0.1:${gateway.agentPort}`,
      `bench-${name}`,
      { VOXGATE_AGENT_TOKEN: gateway.agentToken, VOXGATE_AGENT_SLOTS: "4" },
      name === "tls" ? ["--ca-file", ca.certFile] : [],
    );
    stacks.push({ name, gateway, stopAgent: () => agent.proc.stop() });
    await agent.joined();
    await gateway.proc.waitForLog((l) => l.msg === "agent ready", 30_000);
  }

  const ca_ = readFileSync(ca.certFile);
  const variants = [
    { label: "connect, HTTP/1.1", protocol: "connect", httpVersion: "1.1" },
    { label: "gRPC, h2", protocol: "grpc", httpVersion: "2" },
  ] as const;
  const cold = new Map<string, number[]>();
  const warm = new Map<string, number[]>();
  for (const variant of variants) {
    const optionsOf = (stack: (typeof stacks)[number]): VoxgateClientOptions => ({
      baseUrl: stack.gateway.url,
      token: stack.gateway.clientToken,
      protocol: variant.protocol,
      httpVersion: variant.httpVersion,
      ...(stack.name === "tls" ? { ca: ca_ } : {}),
    });
    const reused = stacks.map((stack) => createVoxgateClient(optionsOf(stack)));
    try {
      // Calls alternate between the stacks, so both see the same machine state.
      for (let i = 0; i < reps + WARMUP; i++) {
        for (const [index, stack] of stacks.entries()) {
          const key = `${variant.label}|${stack.name}`;
          // A new client per call: the timer covers TCP connect, the TLS handshake and the call
          // (the client, and its CA list, is made before the timer starts).
          const fresh = createVoxgateClient(optionsOf(stack));
          try {
            const coldMs = await firstByteMs(fresh);
            const warmMs = await firstByteMs(
              reused[index] as ReturnType<typeof createVoxgateClient>,
            );
            if (i >= WARMUP) {
              cold.set(key, [...(cold.get(key) ?? []), coldMs]);
              warm.set(key, [...(warm.get(key) ?? []), warmMs]);
            }
          } finally {
            fresh.close();
          }
        }
      }
    } finally {
      for (const client of reused) client.close();
    }
  }

  // The handshake alone: TCP connect vs TCP connect + TLS handshake (ALPN h2) to the public port.
  const tlsStack = stacks.find((stack) => stack.name === "tls");
  const connectOnly: number[] = [];
  const withHandshake: number[] = [];
  for (let i = 0; i < reps + WARMUP && tlsStack; i++) {
    const port = tlsStack.gateway.publicPort;
    let began = performance.now();
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve();
      });
      socket.once("error", reject);
    });
    if (i >= WARMUP) connectOnly.push(performance.now() - began);
    began = performance.now();
    await new Promise<void>((resolve, reject) => {
      const socket = tls.connect(
        { host: "127.0.0.1", port, ca: ca_, servername: "localhost", ALPNProtocols: ["h2"] },
        () => {
          socket.destroy();
          resolve();
        },
      );
      socket.once("error", reject);
    });
    if (i >= WARMUP) withHandshake.push(performance.now() - began);
  }

  const fmt = (ms: number) => `${ms.toFixed(1)} ms`.padStart(9);
  console.log(`\nvoxgate TLS first-byte benchmark — node ${process.version}, ${reps} calls each`);
  console.log(
    "\n  first audio byte, p50 (p95)   cleartext            TLS                  TLS cost p50",
  );
  const figures: Record<string, unknown> = {};
  for (const variant of variants) {
    for (const [kind, table] of [
      ["new connection", cold],
      ["reused connection", warm],
    ] as const) {
      const clear = table.get(`${variant.label}|cleartext`) ?? [];
      const secure = table.get(`${variant.label}|tls`) ?? [];
      const cost = percentile(secure, 50) - percentile(clear, 50);
      console.log(
        `  ${`${variant.label}, ${kind}`.padEnd(38)}${fmt(percentile(clear, 50))} (${fmt(percentile(clear, 95))})  ${fmt(percentile(secure, 50))} (${fmt(percentile(secure, 95))})  ${fmt(cost)}`,
      );
      figures[`${variant.label} ${kind}`] = {
        cleartextP50Ms: percentile(clear, 50),
        tlsP50Ms: percentile(secure, 50),
        cleartextP95Ms: percentile(clear, 95),
        tlsP95Ms: percentile(secure, 95),
        tlsCostP50Ms: cost,
      };
    }
  }
  console.log(
    `\n  TCP connect p50 ${fmt(percentile(connectOnly, 50))}; TCP + TLS handshake p50 ${fmt(percentile(withHandshake, 50))} (p95 ${fmt(percentile(withHandshake, 95))})`,
  );
  figures.handshake = {
    tcpConnectP50Ms: percentile(connectOnly, 50),
    tlsHandshakeP50Ms: percentile(withHandshake, 50),
    tlsHandshakeP95Ms: percentile(withHandshake, 95),
  };
  console.log(JSON.stringify({ bench: "tls-first-byte", node: process.version, reps, figures }));
} finally {
  for (const stack of stacks) {
    await stack.stopAgent();
    await stack.gateway.proc.stop();
  }
  rmSync(dir, { recursive: true, force: true });
}
