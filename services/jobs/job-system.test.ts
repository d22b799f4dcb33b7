import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Code,
  ConnectError,
  createClient,
  createContextValues,
  createServiceImplSpec,
} from "@connectrpc/connect";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService, JobState } from "../../gen/voxgate/v1/job_pb.js";
import { settingDefaults } from "../config/settings.js";
import { createDatabaseProvider, type DatabaseProvider } from "../database/database-provider.js";
import { kCallContext } from "../gateway/call-context.js";
import { gatewaySettings } from "../gateway/gateway-settings.js";
import { createInProcessTransport } from "../gateway/in-process-transport.js";
import type { BlobStore } from "../object-store/blob-store.js";
import { createFsBlobStore } from "../object-store/fs-blob-store.js";
import { jobMigrations } from "./job-migrations.js";
import { createJobSystem, type JobSystem } from "./job-system.js";

const log = pino({ level: "silent" });
const SECRET = "system-test-secret-0123456789";
let dir: string;
let database: DatabaseProvider;
let blobs: BlobStore;
let system: JobSystem;
let server: Server;
let port = 0;
const calls: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
let delivered: () => void = () => {};
const firstCall = new Promise<void>((resolve) => {
  delivered = resolve;
});

const alice = {
  contextValues: createContextValues().set(kCallContext, {
    requestId: "t",
    principal: { name: "alice", tenant: "alice", scopes: new Set(["jobs" as const]) },
    log,
  }),
};

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
    });
    req.on("end", () => {
      calls.push({ headers: req.headers, body });
      res.end();
      delivered();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  dir = mkdtempSync(join(tmpdir(), "voxgate-job-system-"));
  database = createDatabaseProvider({
    pool: settingDefaults(gatewaySettings),
    url: "memory:",
    dataDir: dir,
    migrations: jobMigrations,
    log,
  });
  blobs = createFsBlobStore({ rootDir: join(dir, "blobs") });
  system = createJobSystem({
    database,
    blobs,
    dataDir: dir,
    executors: [{ kind: "batch", run: async () => ({ output: { itemCount: 1 } }) }],
    maxTextChars: 100,
    settings: {
      jobPollMs: 50,
      webhookAllowedHosts: ["127.0.0.1", "169.254.169.254"],
      webhookAllowPrivate: false,
      webhookSecret: SECRET,
    },
    log,
  });
}, 60_000);
afterAll(async () => {
  await system?.close();
  await database?.close();
  await blobs?.close();
  await new Promise((resolve) => server?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

describe("job system", () => {
  it("refuses a webhook to a link-local or loopback address and stores nothing", async () => {
    const client = createClient(
      JobService,
      createInProcessTransport({
        services: [createServiceImplSpec<typeof JobService>(JobService, system.handler)],
        interceptors: [],
      }),
    );
    for (const url of [
      "http://169.254.169.254/latest/meta-data/",
      `http://127.0.0.1:${port}/hook`,
    ]) {
      const spec = { kind: { case: "batch" as const, value: { items: [{ text: "hi" }] } } };
      const err = await client.createJob({ spec, webhookUrl: url }, alice).catch((e: unknown) => e);
      expect(ConnectError.from(err).code).toBe(Code.InvalidArgument);
      expect(ConnectError.from(err).rawMessage).toContain("VOXGATE_WEBHOOK_ALLOW_PRIVATE");
    }
    const db = await database.get();
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int8 AS n FROM jobs");
    expect(rows[0]?.n).toBe(0);
  });

  it("runs a job and calls its webhook, signed, once it succeeded", async () => {
    const privateOk = createJobSystem({
      database,
      blobs,
      dataDir: dir,
      executors: [{ kind: "batch", run: async () => ({ output: { itemCount: 1 } }) }],
      maxTextChars: 100,
      settings: {
        jobPollMs: 50,
        webhookAllowedHosts: ["127.0.0.1"],
        webhookAllowPrivate: true,
        webhookSecret: SECRET,
      },
      log,
    });
    try {
      const client = createClient(
        JobService,
        createInProcessTransport({
          services: [createServiceImplSpec<typeof JobService>(JobService, privateOk.handler)],
          interceptors: [],
        }),
      );
      const spec = { kind: { case: "batch" as const, value: { items: [{ text: "hi" }] } } };
      const { job } = await client.createJob(
        { spec, webhookUrl: `http://127.0.0.1:${port}/hook` },
        alice,
      );
      await firstCall;
      const call = calls[0];
      const [, t, mac] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(
        String(call?.headers["x-voxgate-signature"]),
      ) as RegExpExecArray;
      expect(mac).toBe(createHmac("sha256", SECRET).update(`${t}.${call?.body}`).digest("hex"));
      const body = JSON.parse(call?.body ?? "{}") as { job: { id: string; state: string } };
      expect(body.job).toMatchObject({ id: job?.id, state: "JOB_STATE_SUCCEEDED" });
      const got = await client.getJob({ jobId: job?.id ?? "" }, alice);
      expect(got.job?.state).toBe(JobState.SUCCEEDED);
      expect(got.job?.output?.itemCount).toBe(1);
    } finally {
      await privateOk.close();
    }
  });

  it("watches and cancels a job that another gateway's runner runs", async () => {
    let abortedBy: unknown;
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const executor = {
      kind: "batch" as const,
      async run(_job: unknown, ctx: import("./job-executor.js").JobContext) {
        for (let i = 1; i <= 3; i++) await ctx.reportProgress(i, 3, `item ${i}`);
        release();
        await new Promise<void>((resolve) => {
          ctx.signal.addEventListener("abort", () => {
            abortedBy = ctx.signal.reason;
            resolve();
          });
        });
        throw ctx.signal.reason;
      },
    };
    const common = { database, blobs, dataDir: dir, maxTextChars: 100, log };
    // Gateway A takes calls and runs nothing; gateway B runs jobs. They share only the database.
    const a = createJobSystem({
      ...common,
      executors: [executor],
      settings: { jobConcurrency: 0, jobWatchPollMs: 50 },
    });
    const b = createJobSystem({
      ...common,
      executors: [executor],
      settings: { jobPollMs: 50, jobCancelPollMs: 50 },
    });
    // The systems of the tests above would claim the job too.
    await system.close();
    try {
      const client = createClient(
        JobService,
        createInProcessTransport({
          services: [createServiceImplSpec<typeof JobService>(JobService, a.handler)],
          interceptors: [],
        }),
      );
      const clientOfB = createClient(
        JobService,
        createInProcessTransport({
          services: [createServiceImplSpec<typeof JobService>(JobService, b.handler)],
          interceptors: [],
        }),
      );
      // B's runner starts on its first use of the (in-memory, hence new) database.
      await clientOfB.listJobs({}, alice);
      const spec = { kind: { case: "batch" as const, value: { items: [{ text: "hi" }] } } };
      const { job } = await client.createJob({ spec }, alice);
      const jobId = job?.id ?? "";
      const seen: string[] = [];
      for await (const { job: j } of client.watchJob({ jobId }, alice)) {
        seen.push(`${JobState[j?.state ?? 0]}:${j?.progress?.doneUnits}`);
        if (j?.progress?.doneUnits === 3) break;
      }
      expect(seen.slice(-3)).toEqual(["RUNNING:1", "RUNNING:2", "RUNNING:3"]);
      await held;
      const cancelled = await client.cancelJob({ jobId }, alice);
      expect(cancelled.job?.state).toBe(JobState.CANCELLED);
      for (let i = 0; i < 400 && abortedBy === undefined; i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      expect((abortedBy as Error | undefined)?.name).toBe("JobCancelledError");
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
