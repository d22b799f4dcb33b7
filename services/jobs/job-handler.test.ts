import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type Client,
  Code,
  ConnectError,
  type ContextValues,
  createClient,
  createContextValues,
  createServiceImplSpec,
} from "@connectrpc/connect";
import pino from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { JobKind, JobService, JobState } from "../../gen/voxgate/v1/job_pb.js";
import type { Scope } from "../auth/scopes.js";
import { settingDefaults } from "../config/settings.js";
import { createDatabaseProvider, type DatabaseProvider } from "../database/database-provider.js";
import type { SqlDatabase } from "../database/sql-database.js";
import { kCallContext } from "../gateway/call-context.js";
import { gatewaySettings } from "../gateway/gateway-settings.js";
import { createInProcessTransport } from "../gateway/in-process-transport.js";
import type { BlobStore } from "../object-store/blob-store.js";
import { createFsBlobStore } from "../object-store/fs-blob-store.js";
import type { JobContext, JobExecutor } from "./job-executor.js";
import { jobMigrations } from "./job-migrations.js";
import { createJobSystem, type JobSystem } from "./job-system.js";

const log = pino({ level: "silent" });
let dir: string;
let database: DatabaseProvider;
let db: SqlDatabase;
let blobs: BlobStore;
let system: JobSystem;
let client: Client<typeof JobService>;
/** Held runs of the batch executor: the test decides when each one finishes. */
let gate: Promise<void> = Promise.resolve();
let openGate: () => void = () => {};
const contexts: JobContext[] = [];

const batch: JobExecutor = {
  kind: "batch",
  async run(job, ctx) {
    contexts.push(ctx);
    const total = job.spec?.kind.case === "batch" ? job.spec.kind.value.items.length : 0;
    await ctx.reportProgress(0, total, "starting");
    await Promise.race([
      gate,
      new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)),
      ),
    ]);
    const key = `${ctx.keyPrefix}output.wav`;
    const bytes = new Uint8Array(300_000).map((_, i) => i % 251);
    await ctx.blobs.put(key, bytes, { contentType: "audio/wav" });
    await ctx.reportProgress(total, total, "done");
    return {
      output: { contentType: "audio/wav", sizeBytes: BigInt(bytes.length) },
      outputKey: key,
    };
  },
};
const render: JobExecutor = {
  kind: "render",
  async run() {
    return { output: {} };
  },
};

function as(
  name: string,
  scopes: Scope[] = ["jobs"],
  tenant = name,
): { contextValues: ContextValues } {
  return {
    contextValues: createContextValues().set(kCallContext, {
      requestId: "test",
      principal: { name, tenant, scopes: new Set(scopes) },
      log,
    }),
  };
}
const alice = as("alice");
const bob = as("bob");
const admin = as("root", ["admin", "jobs"]);

const batchSpec = (n = 2) => ({
  kind: {
    case: "batch" as const,
    value: { items: Array.from({ length: n }, () => ({ text: "hi" })) },
  },
});

async function rowCount(): Promise<number> {
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int8 AS n FROM jobs");
  return rows[0]?.n ?? 0;
}

async function codeOf(work: Promise<unknown>): Promise<[Code, string]> {
  try {
    await work;
  } catch (err) {
    const e = ConnectError.from(err);
    return [e.code, e.rawMessage];
  }
  throw new Error("expected an error");
}

async function drain<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "voxgate-job-handler-"));
  database = createDatabaseProvider({
    pool: settingDefaults(gatewaySettings),
    url: "memory:",
    dataDir: dir,
    migrations: jobMigrations,
    log,
  });
  db = await database.get();
  blobs = createFsBlobStore({ rootDir: join(dir, "blobs") });
  system = createJobSystem({
    database,
    blobs,
    dataDir: dir,
    executors: [batch, render],
    maxTextChars: 100,
    settings: {
      jobPollMs: 50,
      jobCancelPollMs: 50,
      jobWatchPollMs: 50,
      maxRenderSegments: 3,
      maxActiveJobsPerOwner: 3,
      maxJobLabels: 2,
    },
    log,
  });
  const transport = createInProcessTransport({
    services: [createServiceImplSpec<typeof JobService>(JobService, system.handler)],
    interceptors: [],
  });
  client = createClient(JobService, transport);
}, 60_000);
afterAll(async () => {
  openGate();
  await system?.close();
  await database?.close();
  await blobs?.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  openGate();
  // Whatever a test left running ends; then start from an empty table.
  for (let i = 0; i < 100; i++) {
    const { rows } = await db.query("SELECT id FROM jobs WHERE state IN ('QUEUED', 'RUNNING')");
    if (rows.length === 0) break;
    await sleep(50);
  }
  await db.exec("DELETE FROM jobs");
  gate = new Promise<void>((resolve) => {
    openGate = resolve;
  });
  contexts.length = 0;
});

describe("JobService", () => {
  it("creates a job, streams its progress in order, and serves its output", async () => {
    const { job } = await client.createJob({ spec: batchSpec(2), labels: { team: "a" } }, alice);
    expect(job?.id).toMatch(/^job_[a-z2-7]{26}$/);
    expect(job?.state).toBe(JobState.QUEUED);
    const watched = client.watchJob({ jobId: job?.id ?? "" }, alice);
    const seen: string[] = [];
    const specs: boolean[] = [];
    const kinds: JobKind[] = [];
    const reading = (async () => {
      for await (const { job: j } of watched) {
        specs.push(j?.spec !== undefined);
        kinds.push(j?.kind ?? JobKind.UNSPECIFIED);
        seen.push(
          `${JobState[j?.state ?? 0]}:${j?.progress?.doneUnits}/${j?.progress?.totalUnits}`,
        );
        if (j?.progress?.message === "starting") openGate();
      }
    })();
    await reading;
    expect(seen[0]).toMatch(/^(QUEUED|RUNNING):0\/0$/);
    expect(seen.at(-1)).toBe("SUCCEEDED:2/2");
    expect(seen).toContain("RUNNING:0/2");
    expect(seen.indexOf("RUNNING:0/2")).toBeLessThan(seen.indexOf("RUNNING:2/2"));
    // The spec comes once, in the first update; every update says the kind.
    expect(specs).toEqual([true, ...specs.slice(1).map(() => false)]);
    expect(kinds.every((kind) => kind === JobKind.BATCH)).toBe(true);

    const got = await client.getJob({ jobId: job?.id ?? "" }, alice);
    expect(got.job?.state).toBe(JobState.SUCCEEDED);
    expect(got.job?.labels).toEqual({ team: "a" });
    expect(got.job?.attempts).toBe(1);
    const chunks = await drain(client.getJobOutput({ jobId: job?.id ?? "" }, alice));
    expect(chunks[0]?.contentType).toBe("audio/wav");
    const bytes = Buffer.concat(chunks.map((c) => c.data));
    expect(bytes.length).toBe(300_000);
    expect(bytes[1000]).toBe(1000 % 251);
    expect(chunks.every((c) => c.data.length <= 256 * 1024)).toBe(true);
  });

  it("returns the first job for a repeated request id", async () => {
    const first = await client.createJob({ spec: batchSpec(), requestId: "order-17" }, alice);
    const again = await client.createJob({ spec: batchSpec(5), requestId: "order-17" }, alice);
    expect(again.job?.id).toBe(first.job?.id);
    expect(await rowCount()).toBe(1);
    const other = await client.createJob({ spec: batchSpec(), requestId: "order-17" }, bob);
    expect(other.job?.id).not.toBe(first.job?.id);
    expect(await rowCount()).toBe(2);
  });

  it("hides a job from other tokens with NOT_FOUND and shows it to admins", async () => {
    const { job } = await client.createJob({ spec: batchSpec() }, alice);
    const jobId = job?.id ?? "";
    expect((await codeOf(client.getJob({ jobId }, bob)))[0]).toBe(Code.NotFound);
    expect((await codeOf(client.cancelJob({ jobId }, bob)))[0]).toBe(Code.NotFound);
    expect((await codeOf(drain(client.watchJob({ jobId }, bob))))[0]).toBe(Code.NotFound);
    expect((await codeOf(drain(client.getJobOutput({ jobId }, bob))))[0]).toBe(Code.NotFound);
    expect((await client.listJobs({}, bob)).jobs).toEqual([]);
    expect((await client.getJob({ jobId }, admin)).job?.id).toBe(jobId);
    expect((await client.listJobs({}, admin)).jobs.map((j) => j.id)).toEqual([jobId]);
    // Bob's cancel changed nothing.
    expect((await client.getJob({ jobId }, alice)).job?.state).not.toBe(JobState.CANCELLED);
    const missing = await codeOf(client.getJob({ jobId: "job_aaaaaaaaaaaaaaaaaaaaaaaaaa" }, alice));
    expect(missing).toEqual([Code.NotFound, "job job_aaaaaaaaaaaaaaaaaaaaaaaaaa not found"]);
    expect((await codeOf(client.getJob({ jobId: "../etc" }, alice)))[0]).toBe(Code.InvalidArgument);
  });

  it("owns jobs by tenant, as cloned voices are: tokens of one tenant share them", async () => {
    const { job } = await client.createJob({ spec: batchSpec() }, as("ci-a", ["jobs"], "acme"));
    const jobId = job?.id ?? "";
    const colleague = as("ci-b", ["jobs"], "acme");
    expect((await client.getJob({ jobId }, colleague)).job?.id).toBe(jobId);
    expect((await client.listJobs({}, colleague)).jobs.map((j) => j.id)).toEqual([jobId]);
    // A token named like the tenant but of its own (default) tenant is another tenant.
    const outsider = as("acme-ish", ["jobs"]);
    expect((await codeOf(client.getJob({ jobId }, outsider)))[0]).toBe(Code.NotFound);
    const { rows } = await db.query<{ owner: string }>("SELECT owner FROM jobs WHERE id = $1", [
      jobId,
    ]);
    expect(rows[0]?.owner).toBe("acme");
  });

  it.each([
    ["no kind", {}, "spec must set one kind"],
    [
      "too many segments",
      {
        spec: {
          kind: { case: "render" as const, value: { segments: Array(4).fill({ text: "a" }) } },
        },
      },
      "VOXGATE_MAX_RENDER_SEGMENTS",
    ],
    [
      "a segment over the text limit",
      {
        spec: {
          kind: { case: "render" as const, value: { segments: [{ text: "a".repeat(101) }] } },
        },
      },
      "VOXGATE_MAX_TEXT_CHARS",
    ],
    [
      "a pause over the limit",
      {
        spec: {
          kind: {
            case: "render" as const,
            value: { segments: [{ text: "a", pauseAfterMs: 60_001 }] },
          },
        },
      },
      "VOXGATE_MAX_JOB_PAUSE_MS",
    ],
    [
      "too many labels",
      { spec: batchSpec(), labels: { a: "1", b: "2", c: "3" } },
      "VOXGATE_MAX_JOB_LABELS",
    ],
    ["a bad label key", { spec: batchSpec(), labels: { "Bad Key": "1" } }, "label key"],
    [
      "an empty batch",
      { spec: { kind: { case: "batch" as const, value: { items: [] } } } },
      "batch.items is empty",
    ],
    ["a bad request id", { spec: batchSpec(), requestId: "has space" }, "request_id"],
    [
      "a webhook while webhooks are off",
      { spec: batchSpec(), webhookUrl: "https://hooks.example.com/x" },
      "VOXGATE_WEBHOOK_ALLOWED_HOSTS",
    ],
  ])("refuses %s with INVALID_ARGUMENT and stores nothing", async (_case, request, named) => {
    const [code, message] = await codeOf(client.createJob(request, alice));
    expect(code).toBe(Code.InvalidArgument);
    expect(message).toContain(named);
    expect(await rowCount()).toBe(0);
  });

  it("refuses a kind this gateway does not run, storing nothing", async () => {
    const [code] = await codeOf(
      client.createJob(
        { spec: { kind: { case: "analyzeVoice", value: { voiceId: "v1" } } } },
        alice,
      ),
    );
    expect(code).toBe(Code.Unimplemented);
    expect(await rowCount()).toBe(0);
  });

  it("limits queued and running jobs per token with RESOURCE_EXHAUSTED", async () => {
    for (let i = 0; i < 3; i++) await client.createJob({ spec: batchSpec() }, alice);
    const [code, message] = await codeOf(client.createJob({ spec: batchSpec() }, alice));
    expect(code).toBe(Code.ResourceExhausted);
    expect(message).toContain("VOXGATE_MAX_ACTIVE_JOBS_PER_OWNER");
    expect(await rowCount()).toBe(3);
    // Other tokens have their own allowance.
    await client.createJob({ spec: batchSpec() }, bob);
    expect(await rowCount()).toBe(4);
  });

  it("cancels a running job, aborting its executor, and keeps it cancelled", async () => {
    const { job } = await client.createJob({ spec: batchSpec() }, alice);
    const jobId = job?.id ?? "";
    for (let i = 0; i < 200 && contexts.length === 0; i++) await sleep(25);
    const ctx = contexts[0];
    expect(ctx).toBeDefined();
    const cancelled = await client.cancelJob({ jobId }, alice);
    expect(cancelled.job?.state).toBe(JobState.CANCELLED);
    expect(ctx?.signal.aborted).toBe(true);
    expect(ctx?.signal.reason?.name).toBe("JobCancelledError");
    openGate();
    await sleep(200);
    expect((await client.getJob({ jobId }, alice)).job?.state).toBe(JobState.CANCELLED);
    const [code] = await codeOf(drain(client.getJobOutput({ jobId }, alice)));
    expect(code).toBe(Code.FailedPrecondition);
    // Cancelling an ended job returns it unchanged.
    expect((await client.cancelJob({ jobId }, alice)).job?.state).toBe(JobState.CANCELLED);
  });

  it("refuses output of a job that has not succeeded with FAILED_PRECONDITION", async () => {
    const { job } = await client.createJob({ spec: batchSpec() }, alice);
    const [code, message] = await codeOf(
      drain(client.getJobOutput({ jobId: job?.id ?? "" }, alice)),
    );
    expect(code).toBe(Code.FailedPrecondition);
    expect(message).toMatch(/is (QUEUED|RUNNING)/);
  });

  it("lists jobs newest first, a page at a time, filtered by state, without specs", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await client.createJob({ spec: batchSpec() }, bob)).job?.id ?? "");
    }
    await client.cancelJob({ jobId: ids[0] ?? "" }, bob);
    const first = await client.listJobs({ pageSize: 2 }, bob);
    expect(first.jobs).toHaveLength(2);
    expect(first.jobs.every((j) => j.spec === undefined)).toBe(true);
    expect(first.jobs.map((j) => j.kind)).toEqual([JobKind.BATCH, JobKind.BATCH]);
    const second = await client.listJobs({ pageSize: 2, pageToken: first.nextPageToken }, bob);
    expect(second.nextPageToken).toBe("");
    const all = [...first.jobs, ...second.jobs].map((j) => j.id);
    expect(new Set(all)).toEqual(new Set(ids));
    const cancelled = await client.listJobs({ state: JobState.CANCELLED }, bob);
    expect(cancelled.jobs.map((j) => j.id)).toEqual([ids[0]]);
    const [code] = await codeOf(client.listJobs({ pageToken: "nope!" }, bob));
    expect(code).toBe(Code.InvalidArgument);
  });
});
