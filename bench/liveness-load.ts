/**
 * Liveness under load (issue 12): 1,000 concurrent audio streams through one gateway on 4 echo
 * agents × 250 slots, every process separate on 127.0.0.1, with the gateway's DEFAULT liveness
 * settings. While the machine is saturated a fifth agent (never routed to: worst priority) is
 * SIGSTOPped. Targets: 0 of the 4 serving agents dropped, every call completes (slowly is fine),
 * the frozen agent removed ≤ 3 s after SIGSTOP (read from the gateway's log line time).
 *
 *   node --import tsx bench/liveness-load.ts [--streams N] [--agents N] [--bytes N] [--quick]
 *     [--keepalive-timeout-ms N] [--heartbeat-miss-limit N]   (the gateway's defaults otherwise)
 *
 * Also prints the longest silence the gateway saw on each live agent connection and the longest
 * heartbeat gap: the margin the liveness limits have on this machine. Prints a table and one JSON
 * line.
 */
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { BackendAdminService, BackendState } from "../gen/voxgate/v1/backend_admin_pb.js";
import { generateToken } from "../services/auth/token-codec.js";
import { createWideTransport } from "./support/h2-client.js";
import { type BenchPath, gatewayPath } from "./support/paths.js";
import {
  type BenchProcess,
  type GatewayProcess,
  spawnNode,
  startGateway,
  VOXGATE_CLI,
} from "./support/processes.js";
import { printTable } from "./support/stats.js";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean" },
    streams: { type: "string" },
    agents: { type: "string" },
    bytes: { type: "string" },
    "keepalive-timeout-ms": { type: "string" },
    "heartbeat-miss-limit": { type: "string" },
    // Accepted from the suite runner; this benchmark makes one run.
    reps: { type: "string" },
  },
});
const quick = values.quick ?? false;
const STREAMS = Number(values.streams ?? (quick ? 200 : 1000));
const AGENTS = Number(values.agents ?? 4);
const SLOTS = Math.ceil(STREAMS / AGENTS);
/** Bytes each stream carries after every stream is open (the saturated phase). */
const BYTES = Number(values.bytes ?? 256 * 1024);
const CONNECTIONS = Math.ceil(STREAMS / 200);
const OPENING = 64;
/** Streams hold after their first chunk until this long after the first opened. */
const HOLD_BUDGET_MS = quick ? 10_000 : 20_000;
const VICTIM = "frozen-victim";
/** The issue's goal for a frozen agent on a local link. */
const FROZEN_TARGET_MS = 3000;

/** Log lines of interest from the gateway, parsed as they come. */
interface GatewayEvents {
  sessionsClosed: Array<{ agent: string; reason: string; time: number; maxHeartbeatGapMs: number }>;
  connectionsClosed: Array<{ peer: string; rttMs: number; maxQuietMs: number; time: number }>;
  silent: Array<Record<string, unknown>>;
}

function watchGateway(gateway: BenchProcess): GatewayEvents {
  const events: GatewayEvents = { sessionsClosed: [], connectionsClosed: [], silent: [] };
  let partial = "";
  gateway.child.stdout?.on("data", (text: string | Buffer) => {
    partial += String(text);
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const raw of lines) {
      if (!raw.includes('"msg":"agent')) continue;
      const line = JSON.parse(raw) as Record<string, unknown>;
      if (line.msg === "agent session closed") {
        events.sessionsClosed.push(line as never);
      } else if (line.msg === "agent connection closed") {
        events.connectionsClosed.push(line as never);
      } else if (line.msg === "agent connection silent past its limit; closing it") {
        events.silent.push(line);
      }
    }
  });
  return events;
}

function startAgent(
  gateway: GatewayProcess,
  token: string,
  id: string,
  slots: number,
  priority = 0,
): BenchProcess {
  return spawnNode([VOXGATE_CLI, "agent"], {
    VOXGATE_GATEWAY: gateway.agentAddress,
    VOXGATE_AGENT_TOKEN: token,
    VOXGATE_AGENT_ID: id,
    VOXGATE_AGENT_SLOTS: String(slots),
    VOXGATE_AGENT_ENGINE: "echo",
    VOXGATE_AGENT_PRIORITY: String(priority),
    VOXGATE_LOG_LEVEL: "info",
  });
}

const clientToken = generateToken();
const agentToken = generateToken();
const started: BenchProcess[] = [];
const paths: BenchPath[] = [];

try {
  const gateway = await startGateway({
    clientToken,
    agentToken,
    // Only what 250 calls on one connection need; every liveness setting keeps its default.
    env: {
      VOXGATE_AGENT_MAX_STREAMS: "1024",
      VOXGATE_AGENT_MAX_SLOTS: "1000",
      ...(values["keepalive-timeout-ms"]
        ? { VOXGATE_AGENT_KEEPALIVE_TIMEOUT_MS: values["keepalive-timeout-ms"] }
        : {}),
      ...(values["heartbeat-miss-limit"]
        ? { VOXGATE_HEARTBEAT_MISS_LIMIT: values["heartbeat-miss-limit"] }
        : {}),
    },
  });
  started.push(gateway);
  const events = watchGateway(gateway);
  const agents: BenchProcess[] = [];
  for (let i = 1; i <= AGENTS; i++) {
    const agent = startAgent(gateway, agentToken, `echo-${i}`, SLOTS);
    started.push(agent);
    agents.push(agent);
    await agent.waitFor("connected to gateway", 180_000);
  }
  const victim = startAgent(gateway, agentToken, VICTIM, 1, 1000);
  started.push(victim);
  await victim.waitFor("connected to gateway", 180_000);
  const { transport, close } = createWideTransport(gateway.publicUrl, "grpc", clientToken);
  const admin = createClient(BackendAdminService, transport);
  try {
    const deadline = Date.now() + 120_000;
    let ready = 0;
    while (ready < AGENTS + 1) {
      if (Date.now() > deadline) throw new Error(`only ${ready} agents became ready`);
      const { backends } = await admin.listBackends({});
      ready = backends.filter((b) => b.state === BackendState.READY).length;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    close();
  }
  for (let i = 0; i < CONNECTIONS; i++) {
    paths.push(gatewayPath(gateway.publicUrl, clientToken, "grpc", `gateway-${i}`));
  }
  await Promise.all(paths.map((p) => p.call({ bytes: 4096, verify: true })));

  // Every stream sends one chunk, then waits until all are open (so all 1,000 run at once), then
  // sends the rest: the machine is saturated from the moment the last one opens.
  let opening = 0;
  let opened = 0;
  let failed = 0;
  const firstErrors: string[] = [];
  const openingDone: Array<() => void> = [];
  let allOpen: () => void = () => {};
  const allOpened = new Promise<void>((resolve) => {
    allOpen = resolve;
  });
  let halfOpen: () => void = () => {};
  const halfOpened = new Promise<void>((resolve) => {
    halfOpen = resolve;
  });
  const began = performance.now();
  const holdUntil = performance.now() + HOLD_BUDGET_MS;
  let stoppedAt = 0;
  const calls = Promise.all(
    Array.from({ length: STREAMS }, async (_, i) => {
      while (opening >= OPENING) await new Promise<void>((r) => openingDone.push(r));
      opening++;
      let counted = false;
      const leave = () => {
        if (counted) return;
        counted = true;
        opening--;
        openingDone.shift()?.();
      };
      try {
        await (paths[i % paths.length] as BenchPath).call({
          bytes: BYTES,
          chunkBytes: 16_384,
          holdMs: Math.round(Math.max(1000, holdUntil - performance.now())),
          onFirstByte: () => {
            leave();
            if (++opened === Math.ceil(STREAMS / 2)) halfOpen();
            if (opened === STREAMS) allOpen();
          },
        });
      } catch (err) {
        leave();
        failed++;
        if (firstErrors.length < 3) firstErrors.push(String(err).slice(0, 300));
      }
    }),
  );
  // Frozen while the machine is busy: once half the streams are open, or a second after the held
  // streams start sending the rest, whichever comes first.
  const rest = new Promise((r) => setTimeout(r, Math.max(0, holdUntil + 1000 - performance.now())));
  await Promise.race([halfOpened, rest, calls]);
  stoppedAt = Date.now();
  victim.child.kill("SIGSTOP");
  await Promise.race([allOpened, calls]);
  const allOpenMs = performance.now() - began;
  await calls;
  const runMs = performance.now() - began;
  victim.child.kill("SIGKILL");
  victim.child.kill("SIGCONT");

  const removed = events.sessionsClosed.find((e) => e.agent === VICTIM);
  const frozenRemovedMs = removed ? removed.time - stoppedAt : Number.NaN;
  const dropped = events.sessionsClosed.filter((e) => e.agent !== VICTIM);
  // Live connections' margins are logged when they close: stop the serving agents now.
  await Promise.all(agents.map((a) => a.stop()));
  await new Promise((r) => setTimeout(r, 500));
  const victimPeerSilences = new Set(events.silent.map((e) => String(e.peer)));
  const live = events.connectionsClosed.filter((e) => !victimPeerSilences.has(e.peer));
  const maxQuietMs = Math.max(0, ...live.map((e) => e.maxQuietMs));
  const maxHeartbeatGapMs = Math.max(
    0,
    ...events.sessionsClosed.filter((e) => e.agent !== VICTIM).map((e) => e.maxHeartbeatGapMs),
  );
  const figures = {
    streams: STREAMS,
    agents: AGENTS,
    slotsPerAgent: SLOTS,
    bytesPerStream: BYTES,
    allOpenMs: Math.round(allOpenMs),
    runMs: Math.round(runMs),
    callsFailed: failed,
    agentsDropped: dropped.length,
    frozenRemovedMs,
    liveMaxQuietMs: maxQuietMs,
    liveMaxHeartbeatGapMs: maxHeartbeatGapMs,
  };
  printTable(
    `${STREAMS} streams on ${AGENTS} echo agents × ${SLOTS} slots, ${BYTES} bytes each; agent keepalive timeout ${values["keepalive-timeout-ms"] ?? "default"}, heartbeat miss limit ${values["heartbeat-miss-limit"] ?? "default"}`,
    [
      ["figure", "value"],
      ["time until all streams were open, ms", String(figures.allOpenMs)],
      ["whole run, ms", String(figures.runMs)],
      ["calls failed", String(failed)],
      ["serving agents dropped", String(dropped.length)],
      ["SIGSTOP → frozen agent removed (gateway log), ms", String(frozenRemovedMs)],
      ["longest silence on a live agent connection, ms", String(maxQuietMs)],
      ["longest heartbeat gap of a live agent, ms", String(maxHeartbeatGapMs)],
    ],
  );
  if (firstErrors.length > 0) console.log(`first errors:\n  ${firstErrors.join("\n  ")}`);
  for (const e of events.silent) console.log(`silent: ${JSON.stringify(e)}`);
  if (dropped.length > 0 || failed > 0) {
    for (const proc of [gateway, ...agents]) {
      const warnings = proc.recentLines().filter((l) => !l.includes('"level":30'));
      console.log(`warnings of pid ${proc.pid}:\n  ${warnings.slice(-8).join("\n  ")}`);
    }
  }
  if (dropped.length > 0) {
    console.log(`dropped:\n  ${dropped.map((d) => `${d.agent}: ${d.reason}`).join("\n  ")}`);
  }
  const targets = [
    { key: "callsFailed", value: failed, op: "<=", limit: 0 },
    { key: "agentsDropped", value: dropped.length, op: "<=", limit: 0 },
    { key: "frozenRemovedMs", value: frozenRemovedMs, op: "<=", limit: FROZEN_TARGET_MS },
  ].map((t) => ({ ...t, met: t.value <= t.limit }));
  printTable("targets", [
    ["target", "measured", "met"],
    ...targets.map((t) => [`${t.key} ${t.op} ${t.limit}`, String(t.value), t.met ? "yes" : "NO"]),
  ]);
  console.log(
    JSON.stringify({
      bench: "liveness-load",
      date: new Date().toISOString(),
      node: process.version,
      figures,
      targets,
    }),
  );
} finally {
  for (const path of paths) path.close();
  await Promise.all(started.reverse().map((proc) => proc.stop()));
}
