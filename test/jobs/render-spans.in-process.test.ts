/**
 * Issue 17 item 2, "spans for … job segments": a real render job (a gateway with an in-memory
 * PGlite database and a real Agent hosting a sine engine, all in this process) is traced with the
 * OpenTelemetry SDK into an in-memory exporter. Each spoken segment gives one `voxgate.job.segment`
 * span carrying the job id and the segment index, a child of the job's own `voxgate.job` span (the
 * root of the job's trace, apart from the CreateJob call's); each item of a batch job gives one
 * `voxgate.job.item` span the same way. Size: one render of 4 short segments, one batch of 3 items.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { type Job, JobState } from "../../gen/voxgate/v1/job_pb.js";
import type { Agent } from "../../services/agent/agent.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { settingDefaults } from "../../services/config/settings.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import { createGateway, type Gateway } from "../../services/gateway/index.js";
import { startTracing, type Tracing } from "../../services/tracing/start-tracing.js";
import { startInProcessAgent, waitForBackendReady } from "../helpers/in-process-agent.js";
import { createSineEngine } from "../helpers/sine-engine.js";

const CLIENT_TOKEN = "vxg_render-spans-client";
const AGENT_TOKEN = "vxg_render-spans-agent";
const AGENT_ID = "sine-spans";
const SEGMENTS = 4;
const silent = pino({ level: "silent" });

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let dataDir: string;
let gateway: Gateway;
let agent: Agent;
let agentRun: Promise<void>;
let client: VoxgateClient;

beforeAll(async () => {
  tracing = await startTracing(undefined, { exporter, simpleProcessor: true });
  dataDir = await mkdtemp(join(tmpdir(), "voxgate-render-spans-"));
  const defaults = settingDefaults(gatewaySettings);
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [
      { name: "app", sha256: hashToken(CLIENT_TOKEN), scopes: ["tts", "jobs"] },
      { name: "gpu", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] },
    ],
    limits: {
      maxTextChars: defaults.maxTextChars,
      maxRequestBytes: defaults.maxRequestBytes,
      maxClipBytes: defaults.maxClipBytes,
      defaultTimeoutMs: 120_000,
      maxTimeoutMs: 120_000,
    },
    storage: { dataDir, databaseUrl: "memory:" },
    jobs: { jobPollMs: 50 },
    log: silent,
  });
  const addresses = await gateway.listen();
  const engines = [createSineEngine({ id: "sine", sampleRateHz: 16_000, seconds: 0.2 })];
  ({ agent, run: agentRun } = startInProcessAgent({
    agentPort: addresses.agentPort,
    token: AGENT_TOKEN,
    id: AGENT_ID,
    engines,
    slots: 2,
  }));
  await waitForBackendReady(gateway.registry, AGENT_ID);
  client = createVoxgateClient({
    baseUrl: addresses.publicUrl,
    token: CLIENT_TOKEN,
    timeoutMs: 120_000,
  });
}, 60_000);

afterAll(async () => {
  client?.close();
  await agent?.shutdown();
  await agentRun;
  await gateway?.close(500);
  await tracing?.shutdown();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** The finished `voxgate.job` span of `jobId`, once the job's run has ended. */
async function jobSpanOf(jobId: string): Promise<ReadableSpan> {
  // The job span ends after its segments' spans (a simple processor exports each as it ends).
  const deadline = performance.now() + 30_000;
  for (;;) {
    const span = exporter
      .getFinishedSpans()
      .find((s) => s.name === "voxgate.job" && s.attributes["voxgate.job.id"] === jobId);
    if (span) return span;
    if (performance.now() > deadline) throw new Error("the job span did not end in 30 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function waitForJob(jobId: string): Promise<Job> {
  const deadline = performance.now() + 90_000;
  for (;;) {
    const job = (await client.jobs.getJob({ jobId })).job;
    if (job && job.state >= JobState.SUCCEEDED) return job;
    if (performance.now() > deadline) throw new Error(`job ${jobId} did not end in 90 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

it("gives each segment of a render job one span with the job id and index, in the job's trace", async () => {
  const created = await client.jobs.createJob({
    spec: {
      kind: {
        case: "render",
        value: {
          segments: Array.from({ length: SEGMENTS }, (_, i) => ({
            text: `Segment ${i}.`,
            voice: "tone",
            engine: "sine",
          })),
          encoding: AudioEncoding.WAV,
        },
      },
    },
  });
  const jobId = created.job?.id ?? "";
  const job = await waitForJob(jobId);
  expect(job.state).toBe(JobState.SUCCEEDED);

  const root = await jobSpanOf(jobId);
  expect(root.attributes["voxgate.job.kind"]).toBe("render");
  expect(root.parentSpanContext).toBeUndefined();

  const segments = exporter
    .getFinishedSpans()
    .filter((s) => s.name === "voxgate.job.segment" && s.attributes["voxgate.job.id"] === jobId);
  expect(segments.map((s) => s.attributes["voxgate.job.segment"]).sort()).toEqual([0, 1, 2, 3]);
  for (const span of segments) {
    expect(span.spanContext().traceId).toBe(root.spanContext().traceId);
    expect(span.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
  }
  // The synthesis a segment asks for runs inside its span: some span of the trace is its child.
  const segmentIds = new Set(segments.map((s) => s.spanContext().spanId));
  const children = exporter
    .getFinishedSpans()
    .filter((s) => segmentIds.has(s.parentSpanContext?.spanId ?? ""));
  expect(children.length).toBeGreaterThanOrEqual(SEGMENTS);
}, 120_000);

it("gives each item of a batch job one span with the job id and index, in the job's trace", async () => {
  const created = await client.jobs.createJob({
    spec: {
      kind: {
        case: "batch",
        value: {
          items: Array.from({ length: 3 }, (_, i) => ({
            text: `Item ${i}.`,
            voice: "tone",
            engine: "sine",
            encoding: AudioEncoding.WAV,
          })),
        },
      },
    },
  });
  const jobId = created.job?.id ?? "";
  expect((await waitForJob(jobId)).state).toBe(JobState.SUCCEEDED);
  const root = await jobSpanOf(jobId);
  expect(root.attributes["voxgate.job.kind"]).toBe("batch");
  const items = exporter
    .getFinishedSpans()
    .filter((s) => s.name === "voxgate.job.item" && s.attributes["voxgate.job.id"] === jobId);
  expect(items.map((s) => s.attributes["voxgate.job.item"]).sort()).toEqual([0, 1, 2]);
  for (const span of items) {
    expect(span.spanContext().traceId).toBe(root.spanContext().traceId);
    expect(span.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
  }
}, 120_000);
