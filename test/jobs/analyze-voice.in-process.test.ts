/**
 * analyze_voice as a durable job, end to end through a real gateway (public port on 127.0.0.1,
 * in-memory PGlite, filesystem store): a cloned voice's stored reference audio is measured by the
 * job, the result lands in the job's output and on the voice. The expected figures are worked out
 * here independently of the analyzer: the tone's frequency, and BS.1770's calibration point (a
 * 997 Hz sine at full scale reads -3.01 LUFS, so amplitude `a` reads -3.01 + 20·log10(a)).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { type Job, JobState } from "../../gen/voxgate/v1/job_pb.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { createGateway, type Gateway } from "../../services/gateway/gateway.js";
import { createFakeCloneBackend, toneWav } from "../voices/fake-clone-backend.js";

const TOKEN = "vxg_analyze-job-test-token-0000000000000000000000000000";
/** toneWav's amplitude, as a fraction of full scale. */
const TONE_AMPLITUDE = 8000 / 32768;

let dataDir: string;
let gateway: Gateway;
let client: VoxgateClient;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "voxgate-analyze-job-"));
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [{ name: "tester", sha256: hashToken(TOKEN), scopes: ["tts", "voices", "jobs"] }],
    limits: {
      maxTextChars: 5000,
      maxRequestBytes: 4 * 1024 * 1024,
      maxClipBytes: 16 * 1024 * 1024,
      defaultTimeoutMs: 120_000,
      maxTimeoutMs: 300_000,
    },
    storage: { dataDir, databaseUrl: "memory:" },
    jobs: { jobPollMs: 50 },
    log: pino({ level: "silent" }),
  });
  const { publicUrl } = await gateway.listen();
  const backend = createFakeCloneBackend({ id: "cloner" });
  gateway.registry.add(backend.registration, "test");
  gateway.registry.heartbeat("cloner");
  client = createVoxgateClient({ baseUrl: publicUrl, token: TOKEN, timeoutMs: 120_000 });
}, 60_000);

afterAll(async () => {
  client?.close();
  await gateway?.close(500);
  await rm(dataDir, { recursive: true, force: true });
});

async function analyzeAsJob(voiceId: string): Promise<Job> {
  const { job } = await client.jobs.createJob({
    spec: { kind: { case: "analyzeVoice", value: { voiceId } } },
  });
  const id = job?.id ?? "";
  const deadline = Date.now() + 60_000;
  for (;;) {
    const current = (await client.jobs.getJob({ jobId: id })).job;
    if (current && current.state >= JobState.SUCCEEDED) return current;
    if (Date.now() > deadline) throw new Error(`job ${id} did not end`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it("measures a cloned voice's pitch within 5% and its loudness within 0.5 LU", async () => {
  const low = await client.voices.createVoice({ name: "Low", referenceAudio: toneWav(2, 220) });
  const job = await analyzeAsJob(low.voice?.id ?? "");
  expect(job.state).toBe(JobState.SUCCEEDED);
  const analysis = job.output?.analysis;
  expect(analysis?.durationMs).toBe(2000n);
  expect(Math.abs((analysis?.medianF0Hz ?? 0) / 220 - 1)).toBeLessThan(0.05);
  // The result is kept on the voice as well.
  const stored = (await client.voices.getVoice({ voiceId: low.voice?.id ?? "" })).voice;
  expect(stored?.analysis?.medianF0Hz).toBe(analysis?.medianF0Hz);

  const calibration = await client.voices.createVoice({
    name: "Calibration",
    referenceAudio: toneWav(3, 997),
  });
  const loud = await analyzeAsJob(calibration.voice?.id ?? "");
  const expectedLufs = -3.01 + 20 * Math.log10(TONE_AMPLITUDE);
  expect(loud.state).toBe(JobState.SUCCEEDED);
  expect(Math.abs((loud.output?.analysis?.loudnessLufs ?? 0) - expectedLufs)).toBeLessThan(0.5);
}, 120_000);

it("fails an analyze_voice job for a voice that does not exist, with NOT_FOUND", async () => {
  const job = await analyzeAsJob("vc_aaaaaaaaaaaaaaaaaaaa");
  expect(job.state).toBe(JobState.FAILED);
  expect(job.error?.code).toBe(5); // NOT_FOUND
  expect(job.attempts).toBe(1);
}, 120_000);
