/**
 * Relay benchmark: what the gateway adds between a client and a GPU host, measured side by side
 * in ONE run against three baselines. Separate processes on 127.0.0.1 for the client (this
 * process), the gateway, the agent (echo engine: N bytes in chunks of C, so no model is measured)
 * and the baselines:
 * - direct: this client calling the agent's GPUBackendService on a plain port (no gateway);
 * - legacy: agent → relay over a WebSocket, whole audio base64 in one JSON message, whole body;
 * - wire: raw HTTP/2 stream throughput between two Node processes (the practical ceiling).
 *
 * Figures (median and range over --reps repetitions, each repetition runs every path in turn):
 * added first-byte latency at concurrency 1/16/64/256, throughput for 1 MB and 10 MB answers,
 * small-request rate, gateway CPU per MB and per request (from /proc), REST/JSON and OpenAI vs
 * Connect.
 *
 *   node --import tsx bench/relay.ts [--quick] [--reps N] [--cpu-prof DIR]
 *
 * Prints tables and one JSON line.
 */
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { BackendAdminService, BackendState } from "../gen/voxgate/v1/backend_admin_pb.js";
import { generateToken } from "../services/auth/token-codec.js";
import { createWideTransport } from "./support/h2-client.js";
import {
  type BenchPath,
  type CallTiming,
  connectHttp1Path,
  directPath,
  type EchoAsk,
  gatewayPath,
  legacyPath,
  openAiPath,
  restPath,
  wirePath,
} from "./support/paths.js";
import { cpuTimeMs } from "./support/proc-stats.js";
import {
  BENCH_GATEWAY_ENV,
  type BenchProcess,
  type GatewayProcess,
  spawnRole,
  startEchoAgent,
  startGateway,
} from "./support/processes.js";
import {
  percentile,
  printTable,
  runConcurrently,
  type Spread,
  showSpread,
  spread,
} from "./support/stats.js";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean" },
    reps: { type: "string" },
    "cpu-prof": { type: "string" },
  },
});
const quick = values.quick ?? false;
const reps = Math.max(3, Number(values.reps ?? 3));
const MB = 1_000_000;
const ECHO_DEFAULT_BYTES = 1024 * 1024; // the echo engine's default answer (OpenAI path)
const CONCURRENCIES = [1, 16, 64, 256] as const;
const LATENCY_BYTES = 16_384; // one chunk: the first byte is the whole point
const SMALL_BYTES = 64;
const SMALL_CONCURRENCY = 16;
const counts = quick
  ? { latencyCalls: (c: number) => Math.max(50, c), mb1: 4, mb10: 4, small: 320, proto: 3 }
  : { latencyCalls: (c: number) => Math.max(400, c * 8), mb1: 10, mb10: 5, small: 3000, proto: 10 };

/** Runs `count` calls of `ask` on `path` with `concurrency` at once; returns their timings. */
async function measure(
  path: BenchPath,
  ask: EchoAsk,
  count: number,
  concurrency: number,
): Promise<{ timings: CallTiming[]; elapsedMs: number }> {
  const timings: CallTiming[] = [];
  const began = performance.now();

  await runConcurrently(count, concurrency, async () => {
    timings.push(await path.call(ask));
  });
  const elapsedMs = performance.now() - began;
  if (process.env.BENCH_TRACE) {
    const p99 = percentile(
      timings.map((t) => t.firstMs),
      99,
    ).toFixed(1);
    console.error(
      `  ${path.name} ${ask.bytes} B ×${count} c${concurrency}: ${Math.round(elapsedMs)} ms, first p99 ${p99}`,
    );
  }
  return { timings, elapsedMs };
}

/**
 * Like {@link measure}, also reading the CPU time (ms) the gateway and the direct backend (a plain
 * connect-node server: what the public side of any Connect service costs) used meanwhile.
 */
async function measureWithCpu(
  servers: { gateway: GatewayProcess; direct: BenchProcess },
  path: BenchPath,
  ask: EchoAsk,
  count: number,
  concurrency: number,
) {
  const gatewayBefore = cpuTimeMs(servers.gateway.pid);
  const directBefore = cpuTimeMs(servers.direct.pid);
  const result = await measure(path, ask, count, concurrency);
  return {
    ...result,
    gatewayCpuMs: cpuTimeMs(servers.gateway.pid) - gatewayBefore,
    directCpuMs: cpuTimeMs(servers.direct.pid) - directBefore,
  };
}

/** Waits until the gateway lists `count` ready backends. */
async function waitForBackends(url: string, token: string, count: number): Promise<void> {
  const { transport, close } = createWideTransport(url, "grpc", token);
  const admin = createClient(BackendAdminService, transport);
  try {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const { backends } = await admin.listBackends({});
      if (backends.filter((b) => b.state === BackendState.READY).length >= count) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`fewer than ${count} backends became ready within 30 s`);
  } finally {
    close();
  }
}

const clientToken = generateToken();
const agentToken = generateToken();
const started: BenchProcess[] = [];
const paths: BenchPath[] = [];

try {
  const gateway = await startGateway({
    clientToken,
    agentToken,
    env: BENCH_GATEWAY_ENV,
    nodeFlags: values["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${values["cpu-prof"]}`] : [],
  });
  started.push(gateway);
  const [agent, direct, wire, relay] = await Promise.all([
    startEchoAgent(gateway, agentToken, "echo-1", 256),
    spawnRole("direct-backend"),
    spawnRole("wire-server"),
    spawnRole("legacy-relay"),
  ]);
  started.push(agent, direct, wire, relay);
  const [directReady, wireReady, relayReady] = await Promise.all([
    direct.waitFor("ready"),
    wire.waitFor("ready"),
    relay.waitFor("ready"),
  ]);
  const legacyAgent = spawnRole("legacy-agent", {
    BENCH_RELAY_URL: `ws://127.0.0.1:${String(relayReady.port)}/agent`,
  });
  started.push(legacyAgent);
  await Promise.all([legacyAgent.waitFor("connected"), relay.waitFor("agent joined")]);
  await waitForBackends(gateway.publicUrl, clientToken, 1);

  const p = {
    direct: directPath(`http://127.0.0.1:${String(directReady.port)}`),
    gateway: gatewayPath(gateway.publicUrl, clientToken),
    wire: wirePath(`http://127.0.0.1:${String(wireReady.port)}`),
    legacy: legacyPath(`http://127.0.0.1:${String(relayReady.port)}`),
    connect: connectHttp1Path(gateway.publicUrl, clientToken),
    rest: restPath(gateway.publicUrl, clientToken),
    openai: openAiPath(gateway.publicUrl, clientToken),
  };
  paths.push(...Object.values(p));

  // Every path first proves it delivers exactly the right bytes, then warms up its JIT.
  for (const path of paths) {
    const ask = { bytes: path.name === "openai" ? ECHO_DEFAULT_BYTES : MB, verify: true };
    await path.call(ask);
    await measure(path, { bytes: path.name === "openai" ? ECHO_DEFAULT_BYTES : 4096 }, 20, 4);
  }

  type Rep = Record<string, number>;
  const repFigures: Rep[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const f: Rep = {};
    // 1. First-byte latency, direct vs gateway, at each concurrency.
    for (const c of CONCURRENCIES) {
      const ask = { bytes: LATENCY_BYTES };
      const d = await measure(p.direct, ask, counts.latencyCalls(c), c);
      const g = await measure(p.gateway, ask, counts.latencyCalls(c), c);
      for (const [name, run] of [
        ["direct", d],
        ["gateway", g],
      ] as const) {
        const first = run.timings.map((t) => t.firstMs);
        f[`ttfb.c${c}.${name}.p50Ms`] = percentile(first, 50);
        f[`ttfb.c${c}.${name}.p99Ms`] = percentile(first, 99);
      }
      f[`ttfb.c${c}.addedP50Ms`] =
        (f[`ttfb.c${c}.gateway.p50Ms`] as number) - (f[`ttfb.c${c}.direct.p50Ms`] as number);
      f[`ttfb.c${c}.addedP99Ms`] =
        (f[`ttfb.c${c}.gateway.p99Ms`] as number) - (f[`ttfb.c${c}.direct.p99Ms`] as number);
    }
    // 2. Streamed throughput, one call at a time, every path.
    for (const [label, bytes, count] of [
      ["1MB", MB, counts.mb1],
      ["10MB", 10 * MB, counts.mb10],
    ] as const) {
      for (const path of [p.wire, p.direct, p.gateway, p.legacy]) {
        const run = await measureWithCpu({ gateway, direct }, path, { bytes }, count, 1);
        const totalMs = run.timings.reduce((sum, t) => sum + t.totalMs, 0);
        f[`tput.${label}.${path.name}.MBps`] = (count * bytes) / MB / (totalMs / 1000);
        f[`tput.${label}.${path.name}.firstP50Ms`] = percentile(
          run.timings.map((t) => t.firstMs),
          50,
        );
        f[`tput.${label}.${path.name}.totalP50Ms`] = percentile(
          run.timings.map((t) => t.totalMs),
          50,
        );
        if (path === p.gateway) {
          f[`cpu.${label}.gatewayMsPerMB`] = run.gatewayCpuMs / ((count * bytes) / MB);
        }
        if (path === p.direct) {
          f[`cpu.${label}.directServerMsPerMB`] = run.directCpuMs / ((count * bytes) / MB);
        }
      }
      f[`tput.${label}.gatewayVsDirect`] =
        (f[`tput.${label}.gateway.MBps`] as number) / (f[`tput.${label}.direct.MBps`] as number);
      f[`tput.${label}.gatewayVsWire`] =
        (f[`tput.${label}.gateway.MBps`] as number) / (f[`tput.${label}.wire.MBps`] as number);
      f[`tput.${label}.firstByteLegacyOverGateway`] =
        (f[`tput.${label}.legacy.firstP50Ms`] as number) /
        (f[`tput.${label}.gateway.firstP50Ms`] as number);
      f[`tput.${label}.wholeLegacyOverGateway`] =
        (f[`tput.${label}.legacy.totalP50Ms`] as number) /
        (f[`tput.${label}.gateway.totalP50Ms`] as number);
    }
    // 3. Small-request rate at concurrency 16, and the gateway's CPU per request.
    for (const path of [p.direct, p.gateway]) {
      const run = await measureWithCpu(
        { gateway, direct },
        path,
        { bytes: SMALL_BYTES },
        counts.small,
        SMALL_CONCURRENCY,
      );
      f[`small.${path.name}.perSecond`] = counts.small / (run.elapsedMs / 1000);
      if (path === p.gateway) f["cpu.small.gatewayMsPerRequest"] = run.gatewayCpuMs / counts.small;
      if (path === p.direct)
        f["cpu.small.directServerMsPerRequest"] = run.directCpuMs / counts.small;
    }
    // The gateway serves the same Connect call a plain server does, then relays it: its CPU per
    // call over the direct server's is what relaying costs on top of Connect itself.
    f["cpu.small.gatewayOverDirectServer"] =
      (f["cpu.small.gatewayMsPerRequest"] as number) /
      (f["cpu.small.directServerMsPerRequest"] as number);
    f["small.gatewayVsDirect"] =
      (f["small.gateway.perSecond"] as number) / (f["small.direct.perSecond"] as number);
    // 4. Public protocols on HTTP/1.1: Connect vs REST/JSON vs OpenAI, 1 MiB answers.
    for (const path of [p.connect, p.rest, p.openai]) {
      const run = await measure(path, { bytes: ECHO_DEFAULT_BYTES }, counts.proto, 1);
      f[`proto.${path.name}.firstP50Ms`] = percentile(
        run.timings.map((t) => t.firstMs),
        50,
      );
      f[`proto.${path.name}.totalP50Ms`] = percentile(
        run.timings.map((t) => t.totalMs),
        50,
      );
    }
    for (const path of [p.connect, p.rest]) {
      const run = await measure(path, { bytes: SMALL_BYTES }, counts.small, SMALL_CONCURRENCY);
      f[`proto.${path.name}.smallPerSecond`] = counts.small / (run.elapsedMs / 1000);
    }
    f["proto.restVsConnectTotal"] =
      (f["proto.rest.totalP50Ms"] as number) / (f["proto.connect-h1.totalP50Ms"] as number);
    f["proto.openaiVsConnectTotal"] =
      (f["proto.openai.totalP50Ms"] as number) / (f["proto.connect-h1.totalP50Ms"] as number);
    f["proto.restVsConnectSmallRate"] =
      (f["proto.rest.smallPerSecond"] as number) / (f["proto.connect-h1.smallPerSecond"] as number);
    repFigures.push(f);
    console.error(`relay bench: repetition ${rep + 1}/${reps} done`);
  }

  const s = (key: string): Spread => spread(repFigures.map((f) => f[key] as number));
  const figures = Object.fromEntries(Object.keys(repFigures[0] ?? {}).map((key) => [key, s(key)]));

  const latencyRows = [
    [
      "concurrency",
      "direct p50",
      "gateway p50",
      "added p50",
      "direct p99",
      "gateway p99",
      "added p99",
    ],
    ...CONCURRENCIES.map((c) => [
      String(c),
      showSpread(s(`ttfb.c${c}.direct.p50Ms`)),
      showSpread(s(`ttfb.c${c}.gateway.p50Ms`)),
      showSpread(s(`ttfb.c${c}.addedP50Ms`)),
      showSpread(s(`ttfb.c${c}.direct.p99Ms`)),
      showSpread(s(`ttfb.c${c}.gateway.p99Ms`)),
      showSpread(s(`ttfb.c${c}.addedP99Ms`)),
    ]),
  ];
  printTable(
    `time to first audio byte, ms (${LATENCY_BYTES} B answers), median (range) of ${reps}`,
    latencyRows,
  );
  const tputRows = [["answer", "path", "MB/s", "first byte p50 ms", "whole p50 ms"]];
  for (const label of ["1MB", "10MB"]) {
    for (const name of ["wire", "direct", "gateway", "legacy"]) {
      tputRows.push([
        label,
        name,
        showSpread(s(`tput.${label}.${name}.MBps`), 1),
        showSpread(s(`tput.${label}.${name}.firstP50Ms`)),
        showSpread(s(`tput.${label}.${name}.totalP50Ms`), 1),
      ]);
    }
  }
  printTable("streamed throughput, one call at a time", tputRows);
  printTable("small requests (64 B answers, concurrency 16) and gateway CPU", [
    ["figure", "value"],
    ["direct calls/s", showSpread(s("small.direct.perSecond"), 0)],
    ["gateway calls/s", showSpread(s("small.gateway.perSecond"), 0)],
    ["gateway CPU ms per request", showSpread(s("cpu.small.gatewayMsPerRequest"), 3)],
    [
      "direct server (plain connect-node) CPU ms per request",
      showSpread(s("cpu.small.directServerMsPerRequest"), 3),
    ],
    ["gateway CPU ms per MB (1 MB answers)", showSpread(s("cpu.1MB.gatewayMsPerMB"))],
    ["gateway CPU ms per MB (10 MB answers)", showSpread(s("cpu.10MB.gatewayMsPerMB"))],
    ["direct server CPU ms per MB (10 MB answers)", showSpread(s("cpu.10MB.directServerMsPerMB"))],
  ]);
  printTable("public protocols over HTTP/1.1 (1 MiB answers; small = 64 B at concurrency 16)", [
    ["path", "first byte p50 ms", "whole p50 ms", "small calls/s"],
    ...["connect-h1", "rest", "openai"].map((name) => [
      name,
      showSpread(s(`proto.${name}.firstP50Ms`)),
      showSpread(s(`proto.${name}.totalP50Ms`)),
      name === "openai" ? "n/a (no params)" : showSpread(s(`proto.${name}.smallPerSecond`), 0),
    ]),
  ]);

  const target = (name: string, key: string, op: "<=" | ">=", limit: number) => {
    const value = s(key).median;
    return { name, key, value, limit, op, met: op === "<=" ? value <= limit : value >= limit };
  };
  const targets = [
    target("added first byte p50 at c64 ≤ 1 ms", "ttfb.c64.addedP50Ms", "<=", 1),
    target("added first byte p99 at c64 ≤ 5 ms", "ttfb.c64.addedP99Ms", "<=", 5),
    target("10 MB throughput ≥ 0.8 × direct", "tput.10MB.gatewayVsDirect", ">=", 0.8),
    target(
      "10 MB first byte ≥ 30 × sooner than legacy",
      "tput.10MB.firstByteLegacyOverGateway",
      ">=",
      30,
    ),
    target("whole 10 MB ≥ 1.5 × faster than legacy", "tput.10MB.wholeLegacyOverGateway", ">=", 1.5),
    target("gateway CPU ≤ 10 ms per MB (10 MB answers)", "cpu.10MB.gatewayMsPerMB", "<=", 10),
    target(
      "gateway CPU ≤ 0.3 ms per small request (c16)",
      "cpu.small.gatewayMsPerRequest",
      "<=",
      0.3,
    ),
  ];
  printTable("targets (median of the repetitions)", [
    ["target", "measured", "met"],
    ...targets.map((t) => [t.name, t.value.toFixed(3), t.met ? "yes" : "NO"]),
  ]);
  console.log(
    JSON.stringify({
      bench: "relay",
      date: new Date().toISOString(),
      node: process.version,
      quick,
      reps,
      figures,
      targets: targets.map(({ key, value, limit, op, met }) => ({ key, value, op, limit, met })),
    }),
  );
} finally {
  for (const path of paths) path.close();
  await Promise.all(started.reverse().map((proc) => proc.stop()));
}
