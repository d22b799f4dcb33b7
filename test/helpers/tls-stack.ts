/**
 * TLS helpers for end-to-end tests: agents that dial `https://`, the certificate a port presents
 * to a new connection, and replacing certificate files the way a rotation tool does.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import * as tls from "node:tls";
import { spawnVoxgate, type VoxgateProcess } from "./voxgate-process.js";

/**
 * Starts `voxgate agent --gateway <address> --id <id>` with the echo engine and `env` (token, TLS
 * files). `joined` resolves with its "connected to gateway" line; `refused` with its first
 * "could not join the gateway" line.
 */
export function startTlsAgent(
  address: string,
  id: string,
  env: Record<string, string>,
  args: string[] = [],
): {
  proc: VoxgateProcess;
  joined: () => Promise<Record<string, unknown>>;
  refused: () => Promise<Record<string, unknown>>;
} {
  const proc = spawnVoxgate(["agent", "--gateway", address, "--id", id, ...args], {
    VOXGATE_AGENT_ENGINE: "echo",
    ...env,
  });
  return {
    proc,
    joined: () => proc.waitForLog((l) => l.msg === "connected to gateway", 30_000),
    refused: () => proc.waitForLog((l) => l.msg === "could not join the gateway", 30_000),
  };
}

/**
 * Opens a new TLS connection to `127.0.0.1:port`, trusting `caFile`, and resolves with the SHA-256
 * fingerprint of the certificate the port presents (and the ALPN protocol it chose).
 */
export function presentedCertificate(
  port: number,
  caFile: string,
  alpn: string[] = ["h2", "http/1.1"],
): Promise<{ fingerprint256: string; alpnProtocol: string | false }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      ca: readFileSync(caFile),
      ALPNProtocols: alpn,
      servername: "localhost",
    });
    socket.once("secureConnect", () => {
      const fingerprint256 = socket.getPeerCertificate().fingerprint256;
      const alpnProtocol = socket.alpnProtocol ?? false;
      socket.destroy();
      resolve({ fingerprint256, alpnProtocol });
    });
    socket.once("error", reject);
  });
}

/**
 * Replaces `target`'s certificate and key files with `source`'s, each by an atomic rename, key
 * first: a reader sees the old or the new file, never half of one.
 */
export function replaceCertFiles(
  source: { certFile: string; keyFile: string },
  target: { certFile: string; keyFile: string },
): void {
  for (const [from, to] of [
    [source.keyFile, target.keyFile],
    [source.certFile, target.certFile],
  ] as const) {
    writeFileSync(`${to}.new`, readFileSync(from));
    renameSync(`${to}.new`, to);
  }
}
