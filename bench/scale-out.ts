/**
 * Scale-out benchmark: throughput of 1 and of 3 gateway replicas (small calls per second, 10 MB
 * calls in MB/s) and the ratio, then admission-queue waits under 4× overload. Three echo agents
 * each hold a session to every replica (`--gateway a,b,c`); the client spreads calls round-robin
 * over the replicas' public ports (no load balancer in the way: the ratio is the gateways', not
 * nginx's; test/deploy/ runs the same set-up behind nginx). Every byte of every call is checked.
 *
 *   npm run bench -- --only scale-out            # 10 s per figure, 10 s overload
 *   npm run bench -- --only scale-out --quick    # 4 s per figure, 4 s overload
 *   npm run bench -- --only scale-out --full     # also the issue's 2,000 concurrent streamed
 *                                                # calls and 30 s of 4× overload
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { AudioEncoding } from "../gen/voxgate/v1/audio_pb.js";
import { BackendAdminService, BackendState } from "../gen/voxgate/v1/backend_admin_pb.js";
import { TtsService } from "../gen/voxgate/v1/tts_pb.js";
import { generateToken } from "../services/auth/token-codec.js";
import { fillEchoBytes } from "../services/engines/echo/echo-pattern.js";
import { createWideTransport } from "./support/h2-client.js";
import {
  BENCH_GATEWAY_ENV,
  type BenchProcess,
  type GatewayProcess,
  spawnNode,
  startGateway,
  VOXGATE_CLI,
} from "./support/processes.js";
import { percentile } from "./support/stats.js";

const { values } = parseArgs({
  options: { quick: { type: "boolean" }, full: { type: "boolean" }, reps: { type: "string" } },
});
const SECONDS = values.quick ? 4 : 10;
const OVERLOAD_SECONDS = values.full ? 30 : SECONDS;
const AGENTS = 3;
const SLOTS = 8;
const SMALL_BYTES = 1024;
const BIG_BYTES = 10 * 1024 * 1024;
const SMALL_CONCURRENCY = 32;
const BIG_CONCURRENCY = 3;
const HOLD_MS = 200;

const clientToken = generateToken();
const agentToken = generateToken();
const expectedSmall = Buffer.from(fillEchoBytes(new Uint8Array(SMALL_BYTES), 0));
const expectedBig = Buffer.from(fillEchoBytes(new Uint8Array(BIG_BYTES), 0));

interface Stack {
  gateways: GatewayProcess[];
  agents: BenchProcess[];
  dataDirs: string[];
}

async function startStack(replicas: number): Promise<Stack> {
  const dataDirs = Array.from({ length: replicas }, () =>
    mkdtempSync(join(tmpdir(), "voxgate-bench-scale-")),
  );
  const gateways = await Promise.all(
    dataDirs.map((dir) =>
      startGateway({
        clientToken,
        agentToken,
        env: {
          ...BENCH_GATEWAY_ENV,
          VOXGATE_DATA_DIR: dir,
          VOXGATE_DATABASE_URL: "memory:",
          VOXGATE_QUEUE_MAX: "100000",
          VOXGATE_QUEUE_MAX_WAIT_MS: "600000",
          VOXGATE_MAX_TIMEOUT_MS: "600000",
        },
      }),
    ),
  );
  const list = gateways.map((g) => g.agentAddress).join(",");
  const agents = Array.from({ length: AGENTS }, (_, i) =>
    spawnNode([VOXGATE_CLI, "agent"], {
      VOXGATE_GATEWAY: list,
      VOXGATE_AGENT_TOKEN: agentToken,
      VOXGATE_AGENT_ID: `echo-${i}`,
      VOXGATE_AGENT_SLOTS: String(SLOTS),
      VOXGATE_AGENT_ENGINE: "echo",
      VOXGATE_GATEWAY_KEEPALIVE_TIMEOUT_MS: "15000",
      VOXGATE_LOG_LEVEL: "info",
    }),
  );
  // Each agent logs "connected to gateway" once per replica; wait until every replica routes.
  const deadline = performance.now() + 120_000;
  for (const gateway of gateways) {
    const link = createWideTransport(gateway.publicUrl, "connect", clientToken);
    const admin = createClient(BackendAdminService, link.transport);
    for (;;) {
      const { backends } = await admin.listBackends({});
      if (backends.filter((b) => b.state === BackendState.READY).length >= AGENTS) {
        link.close();
        break;
      }
      if (performance.now() > deadline) throw new Error("agents did not join every replica");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { gateways, agents, dataDirs };
}

async function stopStack(stack: Stack): Promise<void> {
  await Promise.all(stack.agents.map((a) => a.stop()));
  await Promise.all(stack.gateways.map((g) => g.stop()));
  for (const dir of stack.dataDirs) rmSync(dir, { recursive: true, force: true });
}

type Caller = (
  bytes: number,
  holdMs?: number,
) => Promise<{ ok: boolean; exact: boolean; queueMs: number; error?: string }>;

function callers(stack: Stack): { next(): Caller; close(): void } {
  const transports = stack.gateways.map((g) =>
    createWideTransport(g.publicUrl, "grpc", clientToken),
  );
  const clients = transports.map((t) => createClient(TtsService, t.transport));
  let turn = 0;
  return {
    next() {
      const client = clients[turn++ % clients.length] as (typeof clients)[number];
      return async (bytes, holdMs = 0) => {
        let queueMs = 0;
        const parts: Uint8Array[] = [];
        try {
          for await (const chunk of client.streamSynthesize(
            {
              text: "bench",
              engine: "echo",
              encoding: AudioEncoding.PCM,
              params: {
                "echo.bytes": String(bytes),
                "echo.chunk_bytes": String(Math.min(bytes, 256 * 1024)),
                ...(holdMs ? { "echo.hold_ms": String(holdMs) } : {}),
              },
            },
            {
              timeoutMs: 600_000,
              onHeader: (h) => {
                queueMs = Number(h.get("x-voxgate-queue-ms") ?? 0);
              },
            },
          )) {
            parts.push(chunk.data);
          }
        } catch (err) {
          return { ok: false, exact: false, queueMs, error: (err as Error).message };
        }
        const body = Buffer.concat(parts);
        const expected =
          bytes === SMALL_BYTES
            ? expectedSmall
            : bytes === BIG_BYTES
              ? expectedBig
              : Buffer.from(fillEchoBytes(new Uint8Array(bytes), 0));
        return { ok: true, exact: body.equals(expected), queueMs };
      };
    },
    close() {
      for (const t of transports) t.close();
    },
  };
}

/** Runs `concurrency` loops of calls for `seconds`; returns completed calls and failures. */
async function closedLoop(
  pool: ReturnType<typeof callers>,
  bytes: number,
  concurrency: number,
  seconds: number,
): Promise<{ calls: number; failures: number; seconds: number }> {
  const started = performance.now();
  const endAt = started + seconds * 1000;
  let calls = 0;
  let failures = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < endAt) {
        const result = await pool.next()(bytes);
        if (result.ok && result.exact) calls++;
        else failures++;
      }
    }),
  );
  return { calls, failures, seconds: (performance.now() - started) / 1000 };
}

async function measure(replicas: number) {
  const stack = await startStack(replicas);
  const pool = callers(stack);
  try {
    await closedLoop(pool, SMALL_BYTES, SMALL_CONCURRENCY, 1); // warm-up
    const small = await closedLoop(pool, SMALL_BYTES, SMALL_CONCURRENCY, SECONDS);
    const big = await closedLoop(pool, BIG_BYTES, BIG_CONCURRENCY, SECONDS);
    return {
      smallPerSecond: small.calls / small.seconds,
      bigMBps: (big.calls * BIG_BYTES) / 1e6 / big.seconds,
      failures: small.failures + big.failures,
    };
  } finally {
    pool.close();
    await stopStack(stack);
  }
}

async function overload(stack: Stack) {
  const pool = callers(stack);
  const capacityPerSecond = (AGENTS * SLOTS * 1000) / HOLD_MS;
  const offeredPerSecond = 4 * capacityPerSecond;
  const calls: ReturnType<Caller>[] = [];
  const started = performance.now();
  for (let elapsed = 0; elapsed < OVERLOAD_SECONDS * 1000; elapsed = performance.now() - started) {
    const due = Math.floor((elapsed / 1000) * offeredPerSecond) + 1;
    while (calls.length < due) calls.push(pool.next()(SMALL_BYTES, HOLD_MS));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const results = await Promise.all(calls);
  pool.close();
  const waits = results.map((r) => r.queueMs);
  return {
    offered: results.length,
    offeredPerSecond,
    capacityPerSecond,
    failures: results.filter((r) => !r.ok || !r.exact).length,
    // What the failures said (a few distinct messages), so a bad run explains itself.
    errors: [...new Set(results.filter((r) => !r.ok).map((r) => r.error ?? ""))].slice(0, 3),
    waitP50Ms: percentile(waits, 50),
    waitP99Ms: percentile(waits, 99),
    waitMaxMs: Math.max(...waits),
  };
}

async function concurrentStreams(stack: Stack, count: number) {
  const pool = callers(stack);
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: count }, () => pool.next()(64 * 1024)));
  pool.close();
  return {
    calls: count,
    failures: results.filter((r) => !r.ok).length,
    notExact: results.filter((r) => r.ok && !r.exact).length,
    seconds: (performance.now() - started) / 1000,
  };
}

const cpu = `${cpus()[0]?.model ?? "unknown"} × ${cpus().length}`;
const loadBefore = loadavg()[0] ?? 0;
const one = await measure(1);
const three = await measure(3);
const stack = await startStack(3);
let queue: Awaited<ReturnType<typeof overload>>;
let streams: Awaited<ReturnType<typeof concurrentStreams>> | undefined;
try {
  queue = await overload(stack);
  if (values.full) streams = await concurrentStreams(stack, 2000);
} finally {
  await stopStack(stack);
}
const ratioSmall = three.smallPerSecond / one.smallPerSecond;
const ratioBig = three.bigMBps / one.bigMBps;

console.log(`\nscale-out on ${cpu} (load average ${loadBefore.toFixed(1)} before the run)`);
console.log("| replicas | small calls/s (1 KiB) | 10 MB calls, MB/s | failures |");
console.log("|---|---|---|---|");
console.log(
  `| 1 | ${one.smallPerSecond.toFixed(0)} | ${one.bigMBps.toFixed(0)} | ${one.failures} |`,
);
console.log(
  `| 3 | ${three.smallPerSecond.toFixed(0)} | ${three.bigMBps.toFixed(0)} | ${three.failures} |`,
);
console.log(`| ratio 3/1 | ${ratioSmall.toFixed(2)}× | ${ratioBig.toFixed(2)}× | |`);
console.log(
  `\noverload, 3 replicas: ${queue.offered} calls offered at ${queue.offeredPerSecond}/s for ${OVERLOAD_SECONDS} s ` +
    `(4× the ${queue.capacityPerSecond}/s that ${AGENTS}×${SLOTS} slots of ${HOLD_MS} ms calls give): ` +
    `${queue.failures} failed${queue.errors.length ? ` (${queue.errors.join(" | ")})` : ""}; queue wait p50 ${queue.waitP50Ms} ms, p99 ${queue.waitP99Ms} ms, max ${queue.waitMaxMs} ms`,
);
if (streams) {
  console.log(
    `${streams.calls} concurrent streamed calls (64 KiB) over 3 replicas: ${streams.failures} failed, ` +
      `${streams.notExact} not byte-exact, ${streams.seconds.toFixed(1)} s`,
  );
}
console.log(
  JSON.stringify({
    bench: "scale-out",
    cpu,
    seconds: SECONDS,
    one,
    three,
    ratioSmall,
    ratioBig,
    overload: { seconds: OVERLOAD_SECONDS, ...queue },
    ...(streams ? { concurrentStreams: streams } : {}),
  }),
);
process.exit(0);
