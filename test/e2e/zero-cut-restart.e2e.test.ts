/**
 * Zero-cut gateway restart with real processes on loopback (issue 12, item 5). SIGTERM drains a
 * gateway: readiness off, listeners closed (the replacement binds the same ports at once), agents
 * sent on with GatewayLeaving, running calls finish, exit 0. A second SIGTERM cuts the drain short
 * and the log names the cut calls. A render job interrupted by SIGTERM resumes at once on another
 * gateway sharing its PostgreSQL server, long before its lease would have run out.
 *
 * The issue asks for a 20 s stream; the stream here is 20 s too ({@link STREAM_MS}): it holds its
 * slot that long between its first and its last bytes. Bounds are generous (a loaded CI machine);
 * the measured figures are printed as `[figures]` lines.
 */
import * as http from "node:http";
import * as net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { JobState } from "../../gen/voxgate/v1/job_pb.js";
import { fillEchoBytes } from "../../services/engines/echo/echo-pattern.js";
import { findPostgresBinDir, startPostgresServer } from "../helpers/postgres-server.js";
import { startS3rverServer } from "../helpers/s3rver-server.js";
import type { LogLine, VoxgateProcess } from "../helpers/voxgate-process.js";
import { spawnVoxgate } from "../helpers/voxgate-process.js";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";

/** Length of the stream running across the restart, in ms (the figure). */
const STREAM_MS = 20_000;
const STREAM_BYTES = 64 * 1024;

const processes: VoxgateProcess[] = [];
const clients: VoxgateClient[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(processes.map((p) => p.stop("SIGKILL").catch(() => {})));
}, 30_000);

async function gateway(options: Parameters<typeof startGatewayProcess>[0]) {
  const started = await startGatewayProcess({ readyTimeoutMs: 60_000, ...options });
  processes.push(started.proc);
  return started;
}

/** An echo agent dialling `gateways` (comma list of agent ports), backoff capped at 1 s. */
function agent(gw: GatewayProcess, ports: number[], id: string): VoxgateProcess {
  const proc = spawnVoxgate(
    ["agent", "--gateway", ports.map((p) => `127.0.0.1:${p}`).join(","), "--id", id],
    {
      VOXGATE_AGENT_TOKEN: gw.agentToken,
      VOXGATE_AGENT_ENGINE: "echo",
      VOXGATE_AGENT_RECONNECT_MAX_MS: "1000",
      VOXGATE_LOG_LEVEL: "info",
    },
  );
  processes.push(proc);
  return proc;
}

function client(gw: GatewayProcess, httpVersion: "1.1" | "2" = "2"): VoxgateClient {
  const created = createVoxgateClient({
    baseUrl: gw.url,
    token: gw.clientToken,
    httpVersion,
    timeoutMs: 120_000,
  });
  clients.push(created);
  return created;
}

const agentReady = (id: string) => (l: LogLine) => l.msg === "agent ready" && l.agent === id;

/** Streams one held echo call; resolves with its bytes; `onFirst` runs at the first chunk. */
async function heldStream(via: VoxgateClient, holdMs: number, onFirst: () => void) {
  const parts: Uint8Array[] = [];
  for await (const chunk of via.tts.streamSynthesize({
    text: "restart",
    engine: "echo",
    encoding: AudioEncoding.PCM,
    params: {
      "echo.bytes": String(STREAM_BYTES),
      "echo.chunk_bytes": String(STREAM_BYTES / 4),
      "echo.hold_ms": String(holdMs),
    },
  })) {
    if (parts.length === 0) onFirst();
    parts.push(chunk.data);
  }
  return Buffer.concat(parts);
}

/** GET /readyz on a kept-alive HTTP/1.1 connection (the same socket every time). */
function readyz(
  agentPool: http.Agent,
  url: string,
): Promise<{ status: number; checks: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/readyz`, { agent: agentPool }, (res) => {
        const parts: Buffer[] = [];
        res.on("data", (c: Buffer) => parts.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            checks: JSON.parse(Buffer.concat(parts).toString()).checks,
          }),
        );
      })
      .on("error", reject);
  });
}

/** Whether a new TCP connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

describe("gateway SIGTERM drains with zero cuts", () => {
  it(`a ${STREAM_MS / 1000} s stream survives SIGTERM byte-exact, exit 0; the replacement on the same ports has its agents back`, async () => {
    const env = { VOXGATE_DRAIN_TIMEOUT_MS: "90000" };
    const old = await gateway({ env });
    const ids = ["restart-a", "restart-b"];
    for (const id of ids) agent(old, [old.agentPort], id);
    await Promise.all(ids.map((id) => old.proc.waitForLog(agentReady(id), 60_000)));

    const kept = new http.Agent({ keepAlive: true, maxSockets: 1 });
    expect((await readyz(kept, old.url)).checks.accepting).toBe("ok");

    let firstAt = 0;
    let started!: () => void;
    const gotFirst = new Promise<void>((resolve) => {
      started = resolve;
    });
    const stream = heldStream(client(old), STREAM_MS, () => {
      firstAt = performance.now();
      started();
    });
    await gotFirst;

    const termAt = performance.now();
    old.proc.child.kill("SIGTERM");
    await old.proc.waitForLog((l) => l.msg === "draining", 30_000);
    // Readiness is off at once, on a connection opened before; new connections are refused.
    expect(await readyz(kept, old.url)).toMatchObject({
      status: 503,
      checks: { accepting: "shutting down" },
    });
    kept.destroy();
    expect(await refused(old.publicPort)).toBe(true);

    // The replacement takes the same ports while the old process still serves the stream.
    const replacement = await gateway({
      env,
      publicPort: old.publicPort,
      agentPort: old.agentPort,
      clientToken: old.clientToken,
      agentToken: old.agentToken,
    });
    const readyAt = performance.now();
    await Promise.all(ids.map((id) => replacement.proc.waitForLog(agentReady(id), 30_000)));
    const agentsBackMs = performance.now() - readyAt;
    // Each agent was told to go (GatewayLeaving) and dialled again without a backoff delay.
    for (const proc of processes.slice(1, 3)) {
      expect(proc.logs.some((l) => l.msg === "gateway is leaving; dialling again at once")).toBe(
        true,
      );
    }

    const body = await stream;
    expect(body.equals(Buffer.from(fillEchoBytes(new Uint8Array(STREAM_BYTES), 0)))).toBe(true);
    expect(await old.proc.exited()).toBe(0);
    const drained = old.proc.logs.find((l) => l.msg?.startsWith("drained"));
    expect(drained?.ms).toBeGreaterThan(0);
    // The stream really ran across the drain: it ended after SIGTERM, about STREAM_MS after it began.
    expect(performance.now() - firstAt).toBeGreaterThanOrEqual(STREAM_MS - 500);

    // The replacement serves.
    const after = await heldStream(client(replacement), 0, () => {});
    expect(after.byteLength).toBe(STREAM_BYTES);
    console.log(
      `[figures] zero-cut restart: ${STREAM_MS / 1000} s stream complete and byte-exact across SIGTERM; ` +
        `drain ${drained?.ms} ms (SIGTERM at ${Math.round(termAt - firstAt)} ms into the stream), exit 0; ` +
        `replacement ready → ${ids.length} agents READY in ${Math.round(agentsBackMs)} ms`,
    );
    expect(agentsBackMs).toBeLessThan(20_000);
  }, 180_000);

  it("a second SIGTERM cuts the drain short and logs the cut call", async () => {
    const gw = await gateway({ env: { VOXGATE_DRAIN_TIMEOUT_MS: "90000" } });
    agent(gw, [gw.agentPort], "cut-a");
    await gw.proc.waitForLog(agentReady("cut-a"), 60_000);
    let started!: () => void;
    const gotFirst = new Promise<void>((resolve) => {
      started = resolve;
    });
    const stream = heldStream(client(gw), 60_000, () => started()).then(
      () => undefined,
      (err: unknown) => err,
    );
    await gotFirst;
    gw.proc.child.kill("SIGTERM");
    await gw.proc.waitForLog((l) => l.msg === "draining", 30_000);
    gw.proc.child.kill("SIGTERM");
    const cut = await gw.proc.waitForLog((l) => l.msg?.startsWith("drain cut short") ?? false);
    expect(await gw.proc.exited()).toBe(1);
    // The log names the call that was cut (its request id and path).
    const cutCalls = cut.cutCalls as { requestId: string; path: string }[];
    expect(cutCalls).toHaveLength(1);
    expect(cutCalls[0]?.path).toBe("/voxgate.v1.TtsService/StreamSynthesize");
    const call = gw.proc.logs.find(
      (l) => l.msg === "call" && l.requestId === cutCalls[0]?.requestId,
    );
    expect(call?.method ?? cutCalls[0]?.requestId).toBeTruthy();
    expect(cut.why).toBe("stopped again");
    // The client sees its stream fail, not end as if complete.
    expect(await stream).toBeInstanceOf(Error);
  }, 120_000);
});

describe.skipIf(!findPostgresBinDir())("a render job interrupted by SIGTERM", () => {
  it("resumes on the other gateway at once, not after its lease", async () => {
    // Both gateways share jobs (PostgreSQL) and checkpoints (an S3-compatible store).
    const [pg, s3] = await Promise.all([
      startPostgresServer(),
      startS3rverServer("voxgate-restart"),
    ]);
    try {
      const leaseMs = 120_000;
      const env = {
        VOXGATE_DATABASE_URL: await pg.createDatabase("restart"),
        VOXGATE_STORE: "s3",
        VOXGATE_S3_BUCKET: s3.bucket,
        VOXGATE_S3_ENDPOINT: s3.endpoint,
        VOXGATE_S3_REGION: "us-east-1",
        VOXGATE_S3_FORCE_PATH_STYLE: "true",
        VOXGATE_S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
        VOXGATE_S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
        VOXGATE_JOB_LEASE_MS: String(leaseMs),
        VOXGATE_JOB_HEARTBEAT_MS: "10000",
        VOXGATE_JOB_POLL_MS: "100",
        VOXGATE_RENDER_CONCURRENCY: "2",
        VOXGATE_DRAIN_TIMEOUT_MS: "60000",
      };
      const a = await gateway({ env });
      const b = await gateway({ env, clientToken: a.clientToken, agentToken: a.agentToken });
      const ids = ["render-a", "render-b"];
      for (const id of ids) agent(a, [a.agentPort, b.agentPort], id);
      for (const gw of [a, b]) {
        await Promise.all(ids.map((id) => gw.proc.waitForLog(agentReady(id), 60_000)));
      }
      const segments = Array.from({ length: 8 }, (_, i) => ({
        text: `segment ${i}`,
        engine: "echo",
        params: { "echo.bytes": "4800", "echo.hold_ms": "1500" },
      }));
      const { job } = await client(a, "1.1").jobs.createJob({
        spec: { kind: { case: "render", value: { segments } } },
      });
      const jobId = job?.id ?? "";
      // Whichever gateway claimed it is stopped once a segment is checkpointed.
      const isStarted = (l: LogLine) => l.msg === "job started" && l.jobId === jobId;
      const owner = await Promise.race(
        [a, b].map((gw) => gw.proc.waitForLog(isStarted, 60_000).then(() => gw)),
      );
      const other = owner === a ? b : a;
      const watcher = client(other, "1.1");
      for (;;) {
        const { job: now } = await watcher.jobs.getJob({ jobId });
        if ((now?.progress?.doneUnits ?? 0) >= 1) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      owner.proc.child.kill("SIGTERM");
      const givenBack = await owner.proc.waitForLog(
        (l) => l.msg === "job given back at shutdown" && l.jobId === jobId,
        60_000,
      );
      const resumed = await other.proc.waitForLog(isStarted, 60_000);
      const resumeDelayMs = Number(resumed.time) - Number(givenBack.time);
      expect(await owner.proc.exited()).toBe(0);
      const deadline = performance.now() + 60_000;
      let state: JobState | undefined;
      for (;;) {
        const { job: now } = await watcher.jobs.getJob({ jobId });
        state = now?.state;
        if (state === JobState.SUCCEEDED || state === JobState.FAILED) break;
        if (performance.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(state).toBe(JobState.SUCCEEDED);
      // The job's state is read from the database; its log line may still be in the pipe.
      const finished = await other.proc.waitForLog(
        (l) => l.msg === "job succeeded" && l.jobId === jobId,
        30_000,
      );
      const totalMs = Number(finished?.time) - Number(givenBack.time);
      // Resumed at once: well inside the lease the job would otherwise have waited out.
      expect(resumeDelayMs).toBeLessThan(leaseMs / 4);
      expect(totalMs).toBeLessThan(leaseMs / 2);
      const resumedFrom = other.proc.logs.find(
        (l) => l.msg === "render resumes from checkpoints" && l.jobId === jobId,
      );
      expect(Number(resumedFrom?.done)).toBeGreaterThanOrEqual(1);
      console.log(
        `[figures] render job across SIGTERM: given back after its running segments, resumed elsewhere ` +
          `${resumeDelayMs} ms later (lease ${leaseMs} ms), ${resumedFrom?.done} of ${segments.length} segments kept, ` +
          `finished ${totalMs} ms after the hand-back`,
      );
    } finally {
      await Promise.all([pg.stop(), s3.stop()]);
    }
  }, 240_000);
});
