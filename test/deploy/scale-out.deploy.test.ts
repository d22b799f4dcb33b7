/**
 * A real deployment on one machine: three `voxgate gateway` processes on one PostgreSQL server and
 * one S3-compatible store (s3rver), behind nginx (the Debian package, config in test/nginx/)
 * balancing HTTP/1.1 and HTTP/2 (gRPC through grpc_pass) on one TLS public port; four
 * `voxgate agent` processes, each holding a session to all three replicas (three echo agents for
 * load, one espeak agent for a real-audio check). Loopback only; every process is stopped.
 *
 * The issue asks for 2,000 concurrent streamed calls and 4× overload for 30 s. On CI's shared cores
 * this file runs {@link CALLS} concurrent calls and a {@link OVERLOAD_MS} ms overload:
 * 2,000 calls of 4 KiB through nginx took about 90 s here at load average 20 (2 of them refused
 * by the queue's wait estimate), too long for the suite; `npm run bench -- --only scale-out --full`
 * runs the 2,000 (64 KiB each) and the 30 s overload.
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { JobState } from "../../gen/voxgate/v1/job_pb.js";
import { parseWav } from "../../services/audio/wav.js";
import { fillEchoBytes } from "../../services/engines/echo/echo-pattern.js";
import { percentile } from "../helpers/failover-stack.js";
import { findNginx, type NginxServer, startNginx } from "../helpers/nginx-server.js";
import {
  findPostgresBinDir,
  type PostgresServer,
  startPostgresServer,
} from "../helpers/postgres-server.js";
import { type S3rverServer, startS3rverServer } from "../helpers/s3rver-server.js";
import { createTestCa, issueServerCert } from "../helpers/test-pki.js";
import { spawnVoxgate, type VoxgateProcess } from "../helpers/voxgate-process.js";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";

/** Concurrent streamed calls through nginx (the issue's figure is 2,000; see above). */
const CALLS = 300;
/** Bytes of each echo answer, in 4 chunks. */
const CALL_BYTES = 32 * 1024;
/** Length of the overload window, in ms (the issue's is 30 s; see bench/scale-out.ts). */
const OVERLOAD_MS = 3000;
const ECHO_AGENTS = ["echo-1", "echo-2", "echo-3"];
const ESPEAK_AGENT = "espeak-1";
const SLOTS = 4;

const available = Boolean(findNginx() && findPostgresBinDir());
const processes: VoxgateProcess[] = [];
let pg: PostgresServer;
let s3: S3rverServer;
let nginx: NginxServer;
let pkiDir: string;
let caPem: string;
const replicas: GatewayProcess[] = [];
const clients: VoxgateClient[] = [];
/** Environment of every replica (the rolling restart starts replacements with it). */
let gatewayEnv: Record<string, string> = {};

function client(
  baseUrl: string,
  protocol: "connect" | "grpc" | "grpc-web",
  httpVersion: "1.1" | "2",
): VoxgateClient {
  const created = createVoxgateClient({
    baseUrl,
    token: replicas[0]?.clientToken ?? "",
    protocol,
    httpVersion,
    ca: caPem,
    timeoutMs: 120_000,
  });
  clients.push(created);
  return created;
}

const echoRequest = (bytes: number, holdMs = 0) => ({
  text: "deploy",
  engine: "echo",
  encoding: AudioEncoding.PCM,
  params: {
    "echo.bytes": String(bytes),
    "echo.chunk_bytes": String(Math.max(2, bytes / 4)),
    ...(holdMs > 0 ? { "echo.hold_ms": String(holdMs) } : {}),
  },
});

/** Streams one echo call and checks every byte; returns how it went. */
async function streamedCall(
  via: VoxgateClient,
  bytes: number,
  holdMs = 0,
): Promise<{ ok: boolean; error?: ConnectError; exact: boolean; queueMs: number }> {
  let queueMs = 0;
  const parts: Uint8Array[] = [];
  try {
    for await (const chunk of via.tts.streamSynthesize(echoRequest(bytes, holdMs), {
      onHeader: (headers) => {
        queueMs = Number(headers.get("x-voxgate-queue-ms") ?? 0);
      },
    })) {
      parts.push(chunk.data);
    }
  } catch (err) {
    return { ok: false, error: ConnectError.from(err), exact: false, queueMs };
  }
  const body = Buffer.concat(parts);
  const expected = fillEchoBytes(new Uint8Array(bytes), 0);
  return { ok: true, exact: body.equals(Buffer.from(expected)), queueMs };
}

/** POSTs JSON to a REST route through nginx (HTTP/1.1 over TLS). */
function restPost(path: string, body: unknown): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${nginx.url}${path}`,
      {
        method: "POST",
        ca: caPem,
        headers: {
          authorization: `Bearer ${replicas[0]?.clientToken}`,
          "content-type": "application/json",
        },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (c: Buffer) => parts.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

/** Waits until every replica routes to every agent. */
async function waitForAgents(ids: readonly string[], timeoutMs = 90_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (const replica of replicas) {
    const admin = client(replica.url, "connect", "1.1");
    for (;;) {
      const { backends } = await admin.backends.listBackends({});
      const ready = new Set(
        backends.filter((b) => b.state === BackendState.READY).map((b) => b.id),
      );
      if (ids.every((id) => ready.has(id))) break;
      if (performance.now() > deadline) {
        throw new Error(`replica ${replica.url} has only ${[...ready].join(", ")} ready`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

beforeAll(async () => {
  if (!available) return;
  [pg, s3] = await Promise.all([startPostgresServer(), startS3rverServer("voxgate-deploy")]);
  const databaseUrl = await pg.createDatabase("deploy");
  const env = {
    VOXGATE_DATABASE_URL: databaseUrl,
    VOXGATE_STORE: "s3",
    VOXGATE_S3_BUCKET: s3.bucket,
    VOXGATE_S3_ENDPOINT: s3.endpoint,
    VOXGATE_S3_REGION: "us-east-1",
    VOXGATE_S3_FORCE_PATH_STYLE: "true",
    VOXGATE_S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    VOXGATE_S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    // Signed URLs made by one replica are served by another.
    VOXGATE_BLOB_URL_SECRET: "deploy-test-url-secret-0123456789abcdef",
    // A killed replica's running jobs come back to the others quickly.
    VOXGATE_JOB_LEASE_MS: "3000",
    VOXGATE_JOB_POLL_MS: "100",
    // Eleven processes share this machine's cores with other work: liveness limits that notice a
    // frozen agent within 15 s instead of 3 s, so a busy machine slows calls instead of dropping
    // agents (kill -9 is still seen at once: the connection closes).
    VOXGATE_HEARTBEAT_INTERVAL_MS: "1000",
    VOXGATE_HEARTBEAT_MISS_LIMIT: "15",
    VOXGATE_AGENT_KEEPALIVE_TIMEOUT_MS: "15000",
    VOXGATE_PROBE_TIMEOUT_MS: "10000",
    VOXGATE_PROBE_FAILURE_THRESHOLD: "5",
    // "gateway ready" is an info line.
    VOXGATE_LOG_LEVEL: "info",
  };
  gatewayEnv = env;
  const first = await startGatewayProcess({ env, readyTimeoutMs: 90_000 });
  replicas.push(first);
  processes.push(first.proc);
  for (let i = 0; i < 2; i++) {
    const next = await startGatewayProcess({
      env,
      clientToken: first.clientToken,
      agentToken: first.agentToken,
      readyTimeoutMs: 90_000,
    });
    replicas.push(next);
    processes.push(next.proc);
  }
  pkiDir = mkdtempSync(join(tmpdir(), "voxgate-deploy-pki-"));
  const ca = createTestCa(pkiDir, "deploy-ca");
  const cert = issueServerCert(ca, "nginx");
  caPem = readFileSync(ca.certFile, "utf8");
  nginx = await startNginx({
    upstreams: replicas.map((r) => `127.0.0.1:${r.publicPort}`),
    certFile: cert.certFile,
    keyFile: cert.keyFile,
  });
  const gatewayList = replicas.map((r) => `127.0.0.1:${r.agentPort}`).join(",");
  for (const [id, engine] of [
    ...ECHO_AGENTS.map((id) => [id, "echo"] as const),
    [ESPEAK_AGENT, "espeak"] as const,
  ]) {
    processes.push(
      spawnVoxgate(["agent", "--gateway", gatewayList, "--id", id], {
        VOXGATE_AGENT_TOKEN: first.agentToken,
        VOXGATE_AGENT_ENGINE: engine,
        VOXGATE_AGENT_SLOTS: String(SLOTS),
        VOXGATE_GATEWAY_KEEPALIVE_TIMEOUT_MS: "15000",
        // A restarted replica is dialled again within a second of listening.
        VOXGATE_AGENT_RECONNECT_MAX_MS: "1000",
        VOXGATE_LOG_LEVEL: "warn",
      }),
    );
  }
  await waitForAgents([...ECHO_AGENTS, ESPEAK_AGENT]);
}, 240_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(processes.map((p) => p.stop("SIGKILL").catch(() => {})));
  await nginx?.stop();
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (pkiDir) rmSync(pkiDir, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!available)("three gateways behind nginx on one PostgreSQL and one s3rver", () => {
  it(`streams ${CALLS} concurrent calls through nginx over HTTP/1.1 and HTTP/2: 0 errors, byte-exact`, async () => {
    const via = [
      client(nginx.url, "connect", "1.1"),
      client(nginx.url, "grpc", "2"),
      client(nginx.url, "grpc-web", "1.1"),
      client(nginx.url, "connect", "2"),
    ];
    const began = performance.now();
    const results = await Promise.all(
      Array.from({ length: CALLS }, (_, i) =>
        streamedCall(via[i % via.length] as VoxgateClient, CALL_BYTES),
      ),
    );
    const seconds = (performance.now() - began) / 1000;
    const failed = results.filter((r) => !r.ok);
    if (failed.length > 0) {
      // What the agents saw, for whoever reads the failure.
      for (const p of processes.slice(replicas.length)) {
        console.error(
          "agent exit",
          p.child.exitCode,
          "last logs",
          JSON.stringify(p.logs.slice(-8)),
        );
      }
    }
    expect(failed.map((r) => r.error?.message)).toEqual([]);
    expect(results.filter((r) => !r.exact)).toHaveLength(0);
    console.log(
      `[figures] deploy: ${CALLS} concurrent streamed calls (${CALL_BYTES} B each) through nginx, ` +
        `0 failed, all byte-exact, ${seconds.toFixed(1)} s (load average ${loadavg()[0]?.toFixed(1)})`,
    );
    // REST through nginx too, and one real-audio call on the espeak agent.
    const rest = await restPost("/v1/speech:synthesize", {
      text: "Three gateways behind one load balancer.",
      engine: "espeak-ng",
    });
    expect(rest.status, rest.body.toString().slice(0, 300)).toBe(200);
    const wav = parseWav(new Uint8Array(rest.body));
    expect(wav.sampleRateHz).toBe(22_050);
    expect(wav.dataBytes).toBeGreaterThan(22_050);
    // Every replica served some of the calls.
    for (const replica of replicas) {
      const { backends } = await client(replica.url, "connect", "1.1").backends.listBackends({});
      const served = backends.reduce((n, b) => n + Number(b.callsTotal), 0);
      expect(served).toBeGreaterThan(0);
    }
  }, 240_000);

  it(`keeps every call alive under overload for ${OVERLOAD_MS} ms: none fails before its deadline`, async () => {
    // Echo agents: 3 × 4 slots; each call holds its slot 400 ms → about 30 calls/s. Offer 4× that.
    const holdMs = 400;
    const capacityPerSecond = (ECHO_AGENTS.length * SLOTS * 1000) / holdMs;
    const offeredPerSecond = 4 * capacityPerSecond;
    const via = client(nginx.url, "grpc", "2");
    const calls: Promise<Awaited<ReturnType<typeof streamedCall>>>[] = [];
    const started = performance.now();
    // Timers run late on a busy machine: each tick starts every call due by now.
    for (let elapsed = 0; elapsed < OVERLOAD_MS; elapsed = performance.now() - started) {
      const due = Math.floor((elapsed / 1000) * offeredPerSecond) + 1;
      while (calls.length < due) calls.push(streamedCall(via, 1024, holdMs));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // What this process managed to offer: on a loaded machine it may start calls slower than due.
    const offeredRate = calls.length / ((performance.now() - started) / 1000);
    const results = await Promise.all(calls);
    const failed = results.filter((r) => !r.ok);
    expect(failed.map((r) => `${Code[r.error?.code ?? 0]}: ${r.error?.rawMessage}`)).toEqual([]);
    const waits = results.map((r) => r.queueMs);
    const p50 = percentile(waits, 50);
    const p99 = percentile(waits, 99);
    console.log(
      `[figures] deploy overload: ${results.length} calls offered at ${offeredPerSecond}/s for ${OVERLOAD_MS} ms ` +
        `(4x ${capacityPerSecond}/s capacity; ${offeredRate.toFixed(0)}/s made), 0 failed; ` +
        `queue wait p50 ${p50} ms, p99 ${p99} ms`,
    );
    // The queue did its job: calls waited (some of them a while) instead of failing. Only when
    // this process really offered more than the agents can take: a starved test process may not.
    if (offeredRate > 2 * capacityPerSecond) expect(p99).toBeGreaterThan(0);
  }, 240_000);

  it("restarts the three replicas one at a time under steady load: 0 failed calls, 0 cut streams, agents back on each", async () => {
    // Steady load through nginx over every protocol: LOAD_WORKERS callers, each starting its next
    // call when the last ends; each call holds its slot HOLD_MS, so a drain has calls to finish.
    const LOAD_WORKERS = 12;
    const HOLD_MS = 300;
    const via = [
      client(nginx.url, "connect", "1.1"),
      client(nginx.url, "grpc", "2"),
      client(nginx.url, "grpc-web", "1.1"),
      client(nginx.url, "connect", "2"),
    ];
    const logBefore = nginx.errorLog().length;
    let stop = false;
    const results: Awaited<ReturnType<typeof streamedCall>>[] = [];
    const load = Promise.all(
      Array.from({ length: LOAD_WORKERS }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          results.push(
            await streamedCall(via[(w + i) % via.length] as VoxgateClient, 4096, HOLD_MS),
          );
        }
      }),
    );
    const figures: string[] = [];
    try {
      for (let index = 0; index < replicas.length; index++) {
        const old = replicas[index] as GatewayProcess;
        const callsBefore = results.length;
        old.proc.child.kill("SIGTERM");
        await old.proc.waitForLog((l) => l.msg === "draining", 30_000);
        // The same ports are free at once: the replacement starts while the old one drains.
        const replacement = await startGatewayProcess({
          // It opens its public port once its agents are back, so nginx never sends it a call it
          // has no agent for.
          env: { ...gatewayEnv, VOXGATE_OPEN_AFTER_BACKEND_MS: "30000" },
          publicPort: old.publicPort,
          agentPort: old.agentPort,
          clientToken: old.clientToken,
          agentToken: old.agentToken,
          readyTimeoutMs: 90_000,
        });
        processes.push(replacement.proc);
        const readyAt = performance.now();
        expect(await old.proc.exited()).toBe(0);
        const drained = old.proc.logs.find((l) => l.msg?.startsWith("drained"));
        replicas[index] = replacement;
        // Every agent is back on the new replica (READY there).
        const admin = client(replacement.url, "connect", "1.1");
        const wanted = [...ECHO_AGENTS, ESPEAK_AGENT];
        for (;;) {
          const { backends } = await admin.backends.listBackends({});
          const ready = backends.filter((b) => b.state === BackendState.READY).map((b) => b.id);
          if (wanted.every((id) => ready.includes(id))) break;
          if (performance.now() - readyAt > 60_000) {
            throw new Error(`replacement ${index} has only ${ready.join(", ")} READY`);
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        const opened = replacement.proc.logs.find((l) => l.msg === "opening the public port");
        figures.push(
          `replica ${index + 1}: drain ${drained?.ms} ms, exit 0; the replacement's first agent READY ` +
            `${opened?.waitedMs} ms after its agent port listened, all ${wanted.length} ` +
            `${Math.round(performance.now() - readyAt)} ms after its public port did; ` +
            `${results.length - callsBefore} calls meanwhile`,
        );
      }
      // Some load after the last restart too, on the new replicas.
      await new Promise((resolve) => setTimeout(resolve, 1000));
    } finally {
      stop = true;
      await load;
    }
    const failed = results.filter((r) => !r.ok);
    // nginx's own account of any failure (a 502 names its cause there: a reset or closed
    // connection, a GOAWAY, no live upstream), for whoever reads a failed run.
    const nginxErrors = nginx
      .errorLog()
      .slice(logBefore)
      .split("\n")
      .filter((l) => /\[error\]/.test(l) && !/connect\(\) failed \(111/.test(l));
    expect(
      failed.map((r) => `${Code[r.error?.code ?? 0]}: ${r.error?.rawMessage}`),
      nginxErrors.slice(-20).join("\n"),
    ).toEqual([]);
    // No stream was cut: every call got all of its bytes.
    expect(results.filter((r) => !r.exact)).toHaveLength(0);
    // Refused connections (the replica being restarted) are all nginx saw go wrong.
    expect(nginxErrors).toEqual([]);
    console.log(
      `[figures] deploy rolling restart: ${results.length} calls through nginx (${LOAD_WORKERS} callers, ` +
        `held ${HOLD_MS} ms), 0 failed, 0 cut; ` +
        figures.join("; "),
    );
  }, 400_000);

  it("survives kill -9 of one replica: only its calls fail, retries succeed, the rest untouched, its jobs re-run", async () => {
    const victim = replicas[2] as GatewayProcess;
    const survivors = replicas.slice(0, 2);
    const sessionsBefore = await Promise.all(
      survivors.map(async (r) =>
        (await client(r.url, "connect", "1.1").backends.listBackends({})).backends.map((b) => [
          b.id,
          b.connectTime?.seconds,
          b.connectTime?.nanos,
        ]),
      ),
    );
    // Jobs created on the victim, running when it dies.
    const victimJobs = client(victim.url, "connect", "1.1");
    const jobIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { job } = await victimJobs.jobs.createJob({
        spec: {
          kind: {
            case: "batch",
            value: {
              items: [
                {
                  text: `job ${i}`,
                  engine: "echo",
                  params: { "echo.bytes": "64", "echo.hold_ms": "1500" },
                },
              ],
            },
          },
        },
      });
      jobIds.push(job?.id ?? "");
    }
    // Held calls through nginx, spread over the three replicas.
    const via = client(nginx.url, "connect", "1.1");
    const held = Array.from({ length: 24 }, () => streamedCall(via, 4096, 2500));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const { backends: onVictim } = await client(victim.url, "connect", "1.1").backends.listBackends(
      {},
    );
    // The victim's calls are those on its backends and those waiting in its admission queue.
    const metrics = await fetch(`${victim.url}/metrics`, {
      headers: { authorization: `Bearer ${replicas[0]?.clientToken}` },
    }).then((r) => r.text());
    const victimQueued = Number(/^voxgate_queue_depth (\d+)$/m.exec(metrics)?.[1] ?? 0);
    const victimInFlight = onVictim.reduce((n, b) => n + b.inFlight, 0) + victimQueued;
    const survivorLogsBefore = survivors.map((r) => r.proc.logs.length);
    const nginxLogBefore = nginx.errorLog().length;
    await victim.proc.stop("SIGKILL");
    const results = await Promise.all(held);
    const failed = results.filter((r) => !r.ok);
    // Only calls on the victim failed: everything nginx saw go wrong was its connections to the
    // victim, and no call on a survivor failed (their logs say so). A count taken before the kill
    // is a figure, not a bound: calls still on their way to the victim then are its too.
    const nginxErrors = nginx
      .errorLog()
      .slice(nginxLogBefore)
      .split("\n")
      .filter((l) => /\[error\]/.test(l));
    expect(nginxErrors.filter((l) => !l.includes(`127.0.0.1:${victim.publicPort}`))).toEqual([]);
    expect(failed.length).toBeLessThanOrEqual(nginxErrors.length);
    const survivorFailures = survivors.flatMap((r, i) =>
      r.proc.logs.slice(survivorLogsBefore[i]).filter(
        (l) =>
          (l.msg === "call" || l.msg === "call failed") &&
          l.code !== "ok" &&
          // The clients' calls, not the segments of the victim's jobs the survivors take over.
          l.method === "voxgate.v1.TtsService/StreamSynthesize",
      ),
    );
    expect(survivorFailures).toEqual([]);
    expect(results.filter((r) => r.ok && !r.exact)).toHaveLength(0);
    // Clients retrying through nginx succeed (nginx moves to the live replicas).
    const retried = await Promise.all(failed.map(() => streamedCall(via, 4096)));
    expect(retried.filter((r) => !r.ok || !r.exact)).toHaveLength(0);
    // The survivors' agent sessions were not disturbed.
    const sessionsAfter = await Promise.all(
      survivors.map(async (r) =>
        (await client(r.url, "connect", "1.1").backends.listBackends({})).backends.map((b) => [
          b.id,
          b.connectTime?.seconds,
          b.connectTime?.nanos,
        ]),
      ),
    );
    expect(sessionsAfter).toEqual(sessionsBefore);
    // The victim's jobs finish on the survivors once their leases ran out.
    const survivor = client(survivors[0]?.url ?? "", "connect", "1.1");
    const deadline = performance.now() + 120_000;
    for (const id of jobIds) {
      for (;;) {
        const { job } = await survivor.jobs.getJob({ jobId: id });
        if (job?.state === JobState.SUCCEEDED) break;
        if (performance.now() > deadline) throw new Error(`job ${id} is ${job?.state}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    console.log(
      `[figures] deploy kill -9: ${victimInFlight} calls in flight on the victim, ${failed.length} of 24 held calls failed and succeeded on retry; ${jobIds.length} jobs re-run`,
    );
  }, 240_000);
});
