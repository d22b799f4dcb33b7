/**
 * Database faults against a real PostgreSQL server (issue 20). Before: with PostgreSQL hung
 * (SIGSTOP) a query on a pooled connection waited more than 40 s and health stayed SERVING; with
 * it gone (SIGKILL) calls answered 500 Unknown carrying "connect ECONNREFUSED host:port". Now:
 * a hung server gives UNAVAILABLE within the statement timeout (1 s here), a gone one UNAVAILABLE
 * without its address (503 on REST), health is NOT_SERVING while it lasts, and the gateway
 * recovers on its own once the server is back (SIGCONT, or a restart), without a restart itself.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../clients/voxgate-client.js";
import { VoiceType } from "../gen/voxgate/v1/voice_pb.js";
import { hashToken } from "../services/auth/token-codec.js";
import { createGateway, type Gateway } from "../services/gateway/gateway.js";
import { type PostgresServer, startPostgresServer } from "./helpers/postgres-server.js";

const TOKEN = "vxg_database-faults-test-token-0000000000000000000000000";
const STATEMENT_TIMEOUT_MS = 1000;
const CONNECT_TIMEOUT_MS = 1000;
// Generous bounds for a loaded 2-core machine; the hang used to last past 40 s.
const REFUSED_WITHIN_MS = 20_000;
const RECOVERED_WITHIN_MS = 60_000;

let server: PostgresServer;
let gateway: Gateway;
let client: VoxgateClient;
let publicUrl: string;

beforeAll(async () => {
  server = await startPostgresServer();
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [{ name: "tester", sha256: hashToken(TOKEN), scopes: ["voices", "jobs"] }],
    limits: {
      maxTextChars: 5000,
      maxRequestBytes: 1024 * 1024,
      maxClipBytes: 16 * 1024 * 1024,
      defaultTimeoutMs: 60_000,
      maxTimeoutMs: 120_000,
    },
    storage: {
      databaseUrl: await server.createDatabase("faults"),
      databaseStatementTimeoutMs: STATEMENT_TIMEOUT_MS,
      databaseConnectTimeoutMs: CONNECT_TIMEOUT_MS,
    },
    log: pino({ level: "silent" }),
  });
  ({ publicUrl } = await gateway.listen());
  client = createVoxgateClient({ baseUrl: publicUrl, token: TOKEN, timeoutMs: 60_000 });
}, 120_000);

afterAll(async () => {
  client?.close();
  await gateway?.close(500);
  await server?.stop();
});

/** Health of the gateway (`""`) over Connect JSON, no token. */
async function health(): Promise<string> {
  const response = await fetch(`${publicUrl}/grpc.health.v1.Health/Check`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ service: "" }),
  });
  return ((await response.json()) as { status?: string }).status ?? "";
}

async function listCloned(): Promise<{ code: Code | "ok"; message: string; ms: number }> {
  const started = performance.now();
  try {
    await client.voices.listVoices({ type: VoiceType.CLONED });
    return { code: "ok", message: "", ms: performance.now() - started };
  } catch (err) {
    const error = ConnectError.from(err);
    return { code: error.code, message: error.rawMessage, ms: performance.now() - started };
  }
}

async function until(what: () => Promise<boolean>, withinMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < withinMs) {
    if (await what().catch(() => false)) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`not within ${withinMs} ms`);
}

describe("PostgreSQL faults", () => {
  it("a hung server (SIGSTOP) gives UNAVAILABLE quickly, NOT_SERVING, and recovers on SIGCONT", async () => {
    expect((await listCloned()).code).toBe("ok");
    expect(await health()).toBe("SERVING");
    server.signal("SIGSTOP");
    try {
      const refused = await listCloned();
      expect(refused.code).toBe(Code.Unavailable);
      expect(refused.message).toContain("VOXGATE_DATABASE_STATEMENT_TIMEOUT_MS");
      expect(refused.message).not.toContain(String(server.port));
      expect(refused.ms).toBeLessThan(REFUSED_WITHIN_MS);
      expect(await health()).toBe("NOT_SERVING");
    } finally {
      server.signal("SIGCONT");
    }
    await until(async () => (await health()) === "SERVING", RECOVERED_WITHIN_MS);
    expect((await listCloned()).code).toBe("ok");
  }, 120_000);

  it("a gone server (SIGKILL) gives UNAVAILABLE without its address, and recovers on restart", async () => {
    // The test server runs with synchronous_commit off: flush the schema before crashing it.
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query("CHECKPOINT");
    await admin.end();
    server.signal("SIGKILL");
    await server.exited();
    const refused = await listCloned();
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.message).toMatch(/the database is unavailable/);
    expect(refused.message).not.toContain(String(server.port));
    expect(refused.message).not.toContain("127.0.0.1");
    expect(refused.ms).toBeLessThan(REFUSED_WITHIN_MS);
    const rest = await fetch(`${publicUrl}/v1/voices?type=VOICE_TYPE_CLONED`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(rest.status).toBe(503);
    expect(await rest.text()).not.toContain(String(server.port));
    const jobs = await client.jobs.listJobs({}).then(
      () => "ok",
      (err: unknown) => ConnectError.from(err).code,
    );
    expect(jobs).toBe(Code.Unavailable);
    expect(await health()).toBe("NOT_SERVING");

    await server.restart();
    await until(async () => (await health()) === "SERVING", RECOVERED_WITHIN_MS);
    expect((await listCloned()).code).toBe("ok");
  }, 120_000);
});
