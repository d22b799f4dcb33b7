/**
 * Input limits before parsing, on a real gateway process (issue 20, item 2): a 16 MB body of
 * nested arrays on `/v1/audio/speech`, a Connect JSON route and a REST route is refused with
 * 400 naming VOXGATE_MAX_JSON_DEPTH while it is read, before `JSON.parse` builds anything; the
 * gateway's peak RSS (VmHWM) and the latency of probe requests sent meanwhile stay bounded.
 * Before the change such a body added ~500 MB of RSS and blocked the event loop for seconds.
 * Random bytes as a protobuf body are INVALID_ARGUMENT (was 500 internal); a 100 KB header gets
 * a 431 answer (was a TCP reset).
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";

/** What the issue measured: 16 MB of nested arrays (8M `[` then 8M `]`). */
const DEEP = Buffer.from(`${"[".repeat(8_000_000)}${"]".repeat(8_000_000)}`);
/**
 * Generous bound on the peak RSS a refused body may add (it was ~500 MB per body). Measured after
 * the change: 0–20 MB on Node 20, up to 185 MB on Node 24 under load (the 16 MB body is held
 * while it is scanned, and the collector runs later).
 */
const MAX_RSS_GROWTH_BYTES = 300 * 1024 * 1024;

/** Resident and peak resident memory of a process, in bytes (Linux /proc). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1]) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

describe("JSON limits before parsing (real gateway process)", () => {
  let gateway: GatewayProcess;
  let pid: number;

  beforeAll(async () => {
    gateway = await startGatewayProcess();
    pid = gateway.proc.child.pid as number;
    // The embedded database opens at start, in a worker of this process: its memory must be in
    // the baseline, not counted against the body.
    await gateway.proc.waitForLog((l) => l.msg === "database open", 120_000);
  }, 150_000);

  afterAll(async () => {
    expect(await gateway?.proc.stop()).toBe(0);
  });

  /**
   * Posts the deep body while probing the gateway every 50 ms; resolves with the answer, the
   * time to it, the worst probe latency and the peak RSS growth.
   */
  async function postDeep(path: string, contentType: string) {
    // Resets the peak (VmHWM) to the current RSS, so the peak measured next is this body's and
    // not an earlier one's (the embedded database's start, a previous body).
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    const before = memoryOf(pid);
    let worstProbeMs = 0;
    let probing = true;
    const probes = (async () => {
      while (probing) {
        const started = performance.now();
        await fetch(`${gateway.url}/no-such-path`).then((r) => r.arrayBuffer());
        worstProbeMs = Math.max(worstProbeMs, performance.now() - started);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const started = performance.now();
    const response = await fetch(`${gateway.url}${path}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": contentType,
        "connect-protocol-version": "1",
      },
      body: DEEP,
    });
    const text = await response.text();
    const refusedMs = performance.now() - started;
    // A few probes after the answer catch a block that starts late (a parse after the reply).
    await new Promise((r) => setTimeout(r, 300));
    probing = false;
    await probes;
    const after = memoryOf(pid);
    return {
      status: response.status,
      text,
      refusedMs,
      worstProbeMs,
      rssGrowth: Math.max(0, after.peak - before.rss),
    };
  }

  it.each([
    ["OpenAI /v1/audio/speech", "/v1/audio/speech", "application/json"],
    ["Connect JSON TtsService/Synthesize", "/voxgate.v1.TtsService/Synthesize", "application/json"],
    ["REST /v1/speech:synthesize", "/v1/speech:synthesize", "application/json"],
  ])("%s: a 16 MB nested-array body is refused, memory bounded", async (_name, path, type) => {
    const result = await postDeep(path, type);
    console.log(
      `${path}: ${result.status} in ${result.refusedMs.toFixed(0)} ms, worst probe ` +
        `${result.worstProbeMs.toFixed(0)} ms, peak RSS +${(result.rssGrowth / 1048576).toFixed(0)} MB`,
    );
    expect(result.status).toBe(400);
    expect(result.text).toContain("VOXGATE_MAX_JSON_DEPTH");
    expect(result.rssGrowth).toBeLessThan(MAX_RSS_GROWTH_BYTES);
  });

  it("a streaming Connect JSON call nesting too deep is INVALID_ARGUMENT", async () => {
    const payload = Buffer.from(`{"text":${"[".repeat(100)}${"]".repeat(100)}}`);
    const frame = Buffer.alloc(5 + payload.length);
    frame.writeUInt32BE(payload.length, 1);
    payload.copy(frame, 5);
    const response = await fetch(`${gateway.url}/voxgate.v1.TtsService/StreamSynthesize`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/connect+json",
        "connect-protocol-version": "1",
      },
      body: frame,
    });
    const text = await response.text();
    expect(text).toContain('"code":"invalid_argument"');
    expect(text).toContain("VOXGATE_MAX_JSON_DEPTH");
  });

  it("random bytes as a Connect protobuf body are INVALID_ARGUMENT (400), not 500", async () => {
    // 0xff bytes: field 31, wire type 7 (no such wire type) — never a valid message.
    const response = await fetch(`${gateway.url}/voxgate.v1.TtsService/Synthesize`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/proto",
        "connect-protocol-version": "1",
      },
      body: Buffer.alloc(64, 0xff),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { code: string; message: string };
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("voxgate.v1.SynthesizeSpeechRequest");
  });

  it("random bytes in a gRPC-Web frame are INVALID_ARGUMENT", async () => {
    const frame = Buffer.alloc(5 + 64, 0xff);
    frame[0] = 0;
    frame.writeUInt32BE(64, 1);
    const response = await fetch(`${gateway.url}/voxgate.v1.TtsService/Synthesize`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/grpc-web+proto",
      },
      body: frame,
    });
    const status = response.headers.get("grpc-status") ?? trailerStatus(await response.text());
    expect(status).toBe("3");
  });

  it("a 100 KB header gets a 431 answer, not a reset", async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(gateway.publicPort, "127.0.0.1");
      let received = "";
      socket.on("data", (chunk) => {
        received += chunk.toString("latin1");
      });
      socket.on("close", () => resolve(received));
      socket.on("error", (err) => (received ? resolve(received) : reject(err)));
      socket.write(
        `GET /v1/models HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(100 * 1024)}\r\n\r\n`,
      );
    });
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    const viaFetch = await fetch(`${gateway.url}/v1/models`, {
      headers: { "x-big": "a".repeat(100 * 1024) },
    });
    expect(viaFetch.status).toBe(431);
  });

  it("a 100 KB header over HTTP/2 gets a 431 answer, not a refused stream", async () => {
    // Node clients refuse to send header blocks past 64 KiB by default.
    const session = http2.connect(gateway.url, { maxSendHeaderBlockLength: 1024 * 1024 });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ":path": "/v1/models", "x-big": "a".repeat(100 * 1024) });
        stream.on("response", (headers) => resolve(Number(headers[":status"])));
        stream.on("error", reject);
        stream.resume();
        stream.end();
      });
      expect(status).toBe(431);
    } finally {
      session.close();
    }
  });
});

/** The grpc-status in a gRPC-Web trailer frame of `body`. */
function trailerStatus(body: string): string | undefined {
  return /grpc-status:\s*(\d+)/.exec(body)?.[1];
}
