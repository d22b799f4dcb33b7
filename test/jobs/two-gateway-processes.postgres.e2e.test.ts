/**
 * Durable jobs with real gateway processes: two `voxgate gateway` processes share one real
 * PostgreSQL server (VOXGATE_DATABASE_URL), each with its own echo agent, and drain one queue of
 * 1,000 batch jobs created through the first. Every job succeeds on its first attempt, exactly one
 * gateway reports it done, exactly one synthesis call is made for it, and both gateways take work.
 * (test/jobs/two-gateways.postgres.test.ts proves the lease rules themselves, with a kill -9.)
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createVoxgateClient } from "../../clients/voxgate-client.js";
import { settingDefaults } from "../../services/config/settings.js";
import { openPostgresDatabase } from "../../services/database/postgres-database.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import { type PostgresServer, startPostgresServer } from "../helpers/postgres-server.js";
import type { LogLine, VoxgateProcess } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

const JOBS = 1000;

let server: PostgresServer;
const processes: VoxgateProcess[] = [];

beforeAll(async () => {
  server = await startPostgresServer();
}, 60_000);

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL").catch(() => {})));
  await server?.stop();
});

const succeededJobs = (logs: readonly LogLine[]) =>
  logs.filter((l) => l.msg === "job succeeded").map((l) => String(l.jobId));

/**
 * Job ids of the successful TtsService calls a gateway logged for jobs (request id
 * `<jobId>.<suffix>`). Calls refused before any work (all slots busy) are retried and not counted.
 */
const synthesisCallsByJob = (logs: readonly LogLine[]) =>
  logs
    .filter(
      (l) => l.msg === "call" && l.method === "voxgate.v1.TtsService/Synthesize" && l.code === "ok",
    )
    .map((l) => String(l.requestId).split(".")[0] ?? "");

it(`drains ${JOBS} jobs across two gateway processes, each job once`, async () => {
  const url = await server.createDatabase("two_gateways");
  const env = {
    VOXGATE_DATABASE_URL: url,
    VOXGATE_JOB_CONCURRENCY: "4",
    VOXGATE_JOB_POLL_MS: "50",
    VOXGATE_MAX_ACTIVE_JOBS_PER_OWNER: String(JOBS * 2),
    VOXGATE_LOG_LEVEL: "info",
  };
  const first: GatewayProcess = await startGatewayProcess({ env, readyTimeoutMs: 60_000 });
  processes.push(first.proc);
  const second = await startGatewayProcess({
    env,
    clientToken: first.clientToken,
    agentToken: first.agentToken,
    readyTimeoutMs: 60_000,
  });
  processes.push(second.proc);
  const agents = [
    startAgentProcess(first, "echo-a", { VOXGATE_AGENT_ENGINE: "echo" }),
    startAgentProcess(second, "echo-b", { VOXGATE_AGENT_ENGINE: "echo" }),
  ];
  processes.push(...agents.map((a) => a.proc));
  await Promise.all(agents.map((a) => a.connected));

  const client = createVoxgateClient({
    baseUrl: first.url,
    token: first.clientToken,
    timeoutMs: 60_000,
  });
  try {
    const created: string[] = [];
    for (let i = 0; i < JOBS; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, JOBS - i) }, (_, k) =>
          client.jobs.createJob({
            spec: {
              kind: {
                case: "batch",
                value: { items: [{ text: `job ${i + k}`, params: { "echo.bytes": "64" } }] },
              },
            },
          }),
        ),
      );
      created.push(...batch.map((r) => r.job?.id ?? ""));
    }
    expect(new Set(created).size).toBe(JOBS);

    const db = await openPostgresDatabase({ url, pool: settingDefaults(gatewaySettings) });
    try {
      const deadline = Date.now() + 240_000;
      for (;;) {
        const { rows } = await db.query<{ open: number }>(
          "SELECT count(*)::int AS open FROM jobs WHERE state IN ('QUEUED', 'RUNNING')",
        );
        if (rows[0]?.open === 0) break;
        if (Date.now() > deadline) throw new Error(`${rows[0]?.open} jobs still open`);
        await new Promise((r) => setTimeout(r, 250));
      }
      const { rows } = await db.query<{ state: string; attempts: number; n: number }>(
        "SELECT state, attempts, count(*)::int AS n FROM jobs GROUP BY state, attempts",
      );
      expect(rows).toEqual([{ state: "SUCCEEDED", attempts: 1, n: JOBS }]);
    } finally {
      await db.close();
    }

    // Each job was reported done by exactly one gateway, and synthesized exactly once.
    const doneA = succeededJobs(first.proc.logs);
    const doneB = succeededJobs(second.proc.logs);
    expect([...doneA, ...doneB].sort()).toEqual([...created].sort());
    expect(doneA.length).toBeGreaterThan(0);
    expect(doneB.length).toBeGreaterThan(0);
    const calls = [
      ...synthesisCallsByJob(first.proc.logs),
      ...synthesisCallsByJob(second.proc.logs),
    ];
    expect(calls.sort()).toEqual([...created].sort());
  } finally {
    client.close();
  }
}, 360_000);
