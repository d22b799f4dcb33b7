/**
 * The public port with TLS, in process: ALPN picks h2 or HTTP/1.1, and HTTP/1.1 over TLS keeps
 * the limits of the cleartext port (idle keep-alive sockets closed, oversized headers refused).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestCa, issueServerCert, type TestCa } from "../../test/helpers/test-pki.js";
import { createTlsFiles, type TlsFiles } from "../tls/tls-files.js";
import { createPublicServer, type PublicServer } from "./public-server.js";

const log = pino({ level: "silent" });

describe("public port with TLS", () => {
  let dir: string;
  let ca: TestCa;
  let files: TlsFiles;
  let server: PublicServer;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "voxgate-public-tls-"));
    ca = createTestCa(dir, "ca");
    files = createTlsFiles({ ...issueServerCert(ca, "server"), purpose: "test", log });
    server = createPublicServer({
      host: "127.0.0.1",
      port: 0,
      tls: files,
      limits: { keepAliveTimeoutMs: 300, maxHeaderBytes: 4096 },
      log,
      handler(req, res) {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(`HTTP/${req.httpVersion}`);
      },
    });
    port = await server.listen();
  });

  afterAll(async () => {
    await server?.close(100);
    files?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sends `request` over HTTP/1.1 on a new TLS socket; resolves with the answer and when it closed. */
  const http1 = (request: string) =>
    new Promise<{ answer: string; closedAfterMs: number }>((resolve, reject) => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        ca: readFileSync(ca.certFile),
        servername: "localhost",
        ALPNProtocols: ["http/1.1"],
      });
      let answer = "";
      let answeredAt = 0;
      socket.setEncoding("utf8");
      socket.on("secureConnect", () => socket.write(request));
      socket.on("data", (text: string) => {
        answer += text;
        answeredAt ||= performance.now();
      });
      socket.on("error", reject);
      // Bounded: a socket the server never closes fails the test instead of hanging it.
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`socket still open after 10 s; got: ${answer.slice(0, 80)}`));
      }, 10_000);
      socket.on("close", () => {
        clearTimeout(timer);
        resolve({ answer, closedAfterMs: performance.now() - answeredAt });
      });
    });

  it("answers h2 and HTTP/1.1 as ALPN chooses", async () => {
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      ca: readFileSync(ca.certFile),
      servername: "localhost",
    });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ":path": "/" });
        let text = "";
        stream.setEncoding("utf8");
        stream.on("data", (t: string) => {
          text += t;
        });
        stream.on("end", () => resolve(text));
        stream.on("error", reject);
      });
      expect(body).toBe("HTTP/2.0");
    } finally {
      session.close();
    }
    const { answer } = await http1("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer.slice(answer.indexOf("\r\n\r\n"))).toContain("HTTP/1.1");
  });

  it("closes an idle HTTP/1.1 keep-alive socket after the keep-alive timeout", async () => {
    const { answer, closedAfterMs } = await http1("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    // 300 ms plus Node's own slack; without the limit the socket stays open for good.
    expect(closedAfterMs).toBeLessThan(10_000);
  });

  it("refuses HTTP/1.1 headers over the limit with 431", async () => {
    const { answer } = await http1(
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(8000)}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
  });
});
