/**
 * Connection and stream budgets on a real gateway process (issue 20, item 3), with raw sockets:
 * partial HTTP/1.1 headers (slowloris), a body dribbled at ~2 B/s (with and without a token) and
 * an HTTP/2 connection that sends only the preface are all closed within a bound (they stayed
 * open past 80 s); connections over the per-client cap are closed at once; a flood of
 * `Health/Watch` streams (no token needed) is held to the unauthenticated-stream cap with
 * RESOURCE_EXHAUSTED naming the setting (RSS before, at the peak and after is printed).
 *
 * The flood was 40 connections × 256 streams; this test opens the same 10,240 streams.
 * Timeouts are set to 1 s so the test runs in seconds; bounds are generous (load-tolerant).
 */
import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/voxgate-process.js";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";

const HEADERS_TIMEOUT_MS = 1000;
/** Generous bound for "closed within the timeout" on a loaded machine. */
const CLOSE_BOUND_MS = 8000;
const MAX_UNAUTHENTICATED_STREAMS = 64;
const MAX_CONNECTIONS_PER_CLIENT = 50;

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
}

/** Connects, runs `feed` (which writes slowly), and resolves with the ms until the server closed. */
function timeToClose(
  port: number,
  feed: (socket: net.Socket) => NodeJS.Timeout,
  giveUpMs = CLOSE_BOUND_MS + 2000,
): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(port, "127.0.0.1");
    let dribble: NodeJS.Timeout | undefined;
    socket.once("connect", () => {
      dribble = feed(socket);
    });
    socket.on("data", () => {});
    socket.on("error", () => {});
    const giveUp = setTimeout(() => socket.destroy(), giveUpMs);
    socket.once("close", () => {
      clearInterval(dribble);
      clearTimeout(giveUp);
      resolve(performance.now() - started);
    });
  });
}

/** Writes `head` at once, then one byte of `tail` every 500 ms (about 2 B/s). */
function dribbler(head: string, tail = "x".repeat(10_000)) {
  return (socket: net.Socket) => {
    socket.write(head);
    let i = 0;
    return setInterval(() => {
      if (!socket.destroyed) socket.write(tail[i++ % tail.length] as string);
    }, 500);
  };
}

describe("connection and stream budgets (real gateway process)", () => {
  let gateway: GatewayProcess;

  beforeAll(async () => {
    gateway = await startGatewayProcess({
      env: {
        VOXGATE_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        VOXGATE_MAX_UNAUTHENTICATED_STREAMS: String(MAX_UNAUTHENTICATED_STREAMS),
        VOXGATE_MAX_CONNECTIONS_PER_CLIENT: String(MAX_CONNECTIONS_PER_CLIENT),
      },
    });
  });

  afterAll(async () => {
    expect(await gateway?.proc.stop()).toBe(0);
  });

  it("closes an HTTP/1.1 connection whose headers dribble in (slowloris)", async () => {
    const ms = await timeToClose(
      gateway.publicPort,
      dribbler("GET /v1/models HTTP/1.1\r\nhost: x\r\nx-a: "),
    );
    expect(ms).toBeLessThan(CLOSE_BOUND_MS);
  });

  it("closes a connection whose body dribbles at ~2 B/s, with a token", async () => {
    const head =
      "POST /v1/audio/speech HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" +
      `authorization: Bearer ${gateway.clientToken}\r\ncontent-length: 100000\r\n\r\n`;
    const ms = await timeToClose(gateway.publicPort, dribbler(head));
    expect(ms).toBeLessThan(CLOSE_BOUND_MS);
    await gateway.proc.waitForLog((l) => l.msg === "slow request body cut");
  });

  it("closes a connection whose body dribbles at ~2 B/s, without a token (after the 401)", async () => {
    const head =
      "POST /v1/audio/speech HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" +
      "content-length: 100000\r\n\r\n";
    const ms = await timeToClose(gateway.publicPort, dribbler(head));
    expect(ms).toBeLessThan(CLOSE_BOUND_MS);
  });

  it("closes an HTTP/2 connection that sends only the preface", async () => {
    const ms = await timeToClose(gateway.publicPort, (socket) => {
      socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      return setInterval(() => {}, 1000);
    });
    expect(ms).toBeLessThan(CLOSE_BOUND_MS);
  });

  it("closes connections past the per-client cap at once, logging the setting", async () => {
    const sockets = await Promise.all(
      Array.from(
        { length: MAX_CONNECTIONS_PER_CLIENT + 10 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const socket = net.connect(gateway.publicPort, "127.0.0.1", () => resolve(socket));
            socket.on("error", () => {});
          }),
      ),
    );
    try {
      await waitFor(() => sockets.filter((s) => s.destroyed || s.readableEnded).length >= 10, {
        what: "10 refused connections",
      });
      const line = await gateway.proc.waitForLog((l) => l.msg === "connection refused");
      expect(String(line.reason)).toContain("VOXGATE_MAX_CONNECTIONS_PER_CLIENT");
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });
});

// Its own gateway with the default headers timeout (10 s): on a loaded machine a flood of 10,240
// streams can keep a session's first stream waiting past the 1 s used above, and that session
// would (rightly) be closed, which is not what this test measures.
describe("stream budget under a Health/Watch flood (real gateway process)", () => {
  let flooded: GatewayProcess;

  beforeAll(async () => {
    flooded = await startGatewayProcess({
      env: { VOXGATE_MAX_UNAUTHENTICATED_STREAMS: String(MAX_UNAUTHENTICATED_STREAMS) },
    });
  });

  afterAll(async () => {
    expect(await flooded?.proc.stop()).toBe(0);
  });

  /** One flood of 40 × 256 Health/Watch streams; resolves once every stream was answered. */
  async function flood() {
    const sessions: http2.ClientHttp2Session[] = [];
    const clientErrors = new Set<string>();
    const outcomes = { open: 0, refused: 0, other: 0, messages: new Set<string>() };
    // An empty HealthCheckRequest in a gRPC envelope: Watch the whole server.
    const request = Buffer.alloc(5);
    const answers: Promise<void>[] = [];
    // Session after session, each sending its 256 streams as soon as it is connected: a client
    // that spends seconds building all streams first would itself miss the 1 s headers timeout.
    for (let i = 0; i < 40; i++) {
      const session = http2.connect(flooded.url);
      sessions.push(session);
      session.on("error", (err) => clientErrors.add(err.message));
      await new Promise((resolve) => session.once("connect", resolve));
      for (let j = 0; j < 256; j++) {
        answers.push(
          new Promise<void>((resolve) => {
            const stream = session.request({
              ":method": "POST",
              ":path": "/grpc.health.v1.Health/Watch",
              "content-type": "application/grpc",
              te: "trailers",
            });
            let answered = false;
            stream.on("error", (err) => clientErrors.add(`stream: ${err.message}`));
            stream.on("response", (headers) => {
              answered = true;
              const status = headers["grpc-status"];
              if (status === undefined) {
                outcomes.open++;
              } else if (status === "8") {
                outcomes.refused++;
                outcomes.messages.add(decodeURIComponent(String(headers["grpc-message"])));
              } else {
                outcomes.other++;
              }
              resolve();
            });
            // A stream reset before it answered counts as other.
            stream.on("close", () => {
              if (!answered) {
                outcomes.other++;
                clientErrors.add(`reset ${stream.rstCode}`);
              }
              resolve();
            });
            stream.resume();
            stream.end(request);
          }),
        );
      }
    }
    await Promise.all(answers);
    const peak = rssOf(flooded.proc.child.pid as number);
    for (const session of sessions) session.destroy();
    if (clientErrors.size > 0) console.log("client errors", [...clientErrors]);
    return { outcomes, peak };
  }

  /** The gateway's V8 heap in use and its external (native) memory, from its own /metrics. */
  async function heapOf(): Promise<{ text: string; heapUsed: number }> {
    const text = await (
      await fetch(`${flooded.url}/metrics`, {
        headers: { authorization: `Bearer ${flooded.clientToken}` },
      })
    ).text();
    const bytes = (name: string) => Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1]);
    const heapUsed = bytes("voxgate_nodejs_heap_size_used_bytes");
    const external = bytes("voxgate_nodejs_external_memory_bytes");
    return {
      heapUsed,
      text: `heap used ${(heapUsed / 1048576).toFixed(0)} MB, external ${(external / 1048576).toFixed(0)} MB`,
    };
  }

  it("holds floods of 40 × 256 Health/Watch streams to the cap, and their memory is reused", async () => {
    const pid = flooded.proc.child.pid as number;
    const baseline = rssOf(pid);
    const heapBefore = await heapOf();
    console.log(`[figures] before the floods: ${heapBefore.text}`);
    let heapAfter = heapBefore;
    const settledAfter: number[] = [];
    const MiB = 1048576;
    // Three floods in a row: the first may grow the heap (V8 keeps what it grew for a while,
    // longer when the machine is busy), but what a flood holds must come back for reuse, so the
    // later floods fit in the memory the first one left instead of stacking on it.
    for (let round = 1; round <= 3; round++) {
      const floodStarted = performance.now();
      const { outcomes, peak } = await flood();
      console.log(
        `[figures] flood ${round}: answered in ${(performance.now() - floodStarted).toFixed(0)} ms; ` +
          `${outcomes.open} open, ${outcomes.refused} refused, ${outcomes.other} other; RSS ` +
          `baseline ${(baseline / MiB).toFixed(0)} MB, peak ${(peak / MiB).toFixed(0)} MB`,
      );
      expect(outcomes.open).toBeLessThanOrEqual(MAX_UNAUTHENTICATED_STREAMS);
      expect(outcomes.other).toBe(0);
      expect(outcomes.refused).toBe(40 * 256 - outcomes.open);
      expect([...outcomes.messages].join()).toContain("VOXGATE_MAX_UNAUTHENTICATED_STREAMS");
      // Every stream costs memory while it is being answered, so the peak depends on how fast
      // this machine answers 10,240 streams (+35-65 MB on a quiet machine, several hundred MB
      // when other tests starve the gateway of CPU); only a sanity bound here. Before the caps
      // 9,304 streams stayed open and held +437 MB that never came back.
      expect(peak - baseline).toBeLessThan(1024 * MiB);
      // The closed sessions' streams end on the server a moment after the client destroyed them.
      await new Promise((r) => setTimeout(r, 2000));
      settledAfter.push(rssOf(pid));
      // RSS keeps what the allocator grew; the heap figures show how much of it is still in use.
      heapAfter = await heapOf();
      console.log(`[figures] after flood ${round}: ${heapAfter.text}`);
    }
    const [, second = 0, third = 0] = settledAfter;
    console.log(
      `[figures] RSS after each flood: ${settledAfter.map((b) => (b / MiB).toFixed(0)).join(", ")} MB ` +
        `(baseline ${(baseline / MiB).toFixed(0)} MB)`,
    );
    // Reuse, not accumulation: the last flood adds at most a fraction of what one flood may take
    // on a starved machine (each flood's peak bound above is 1 GiB). Measured from the second
    // flood: the allocator may still be growing to its plateau after the first (Node 24 in CI:
    // 221, 554, 581 MB; Node 20: 481, 504, 507 MB), while a leak adds a flood's worth each time.
    expect(third - second).toBeLessThan(192 * MiB);
    // And the memory is given back to the runtime: the JS heap in use is near where it started
    // (measured +9-34 MB after floods that peaked at +200-700 MB of RSS); RSS itself stays with
    // the allocator for reuse. Before the caps the held streams kept +437 MB in use for good.
    expect(heapAfter.heapUsed - heapBefore.heapUsed).toBeLessThan(128 * MiB);
    // The gateway still answers.
    const health = await fetch(`${flooded.url}/v1/models`, {
      headers: { authorization: `Bearer ${flooded.clientToken}` },
    });
    expect(health.status).toBe(200);
  }, 180_000);
});
