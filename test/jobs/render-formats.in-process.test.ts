/**
 * Render outputs in every compressed format, and renders that mix engines of different rates,
 * decoded by an independent decoder (Debian's ffmpeg) — issue 19's "every format and rate decoded
 * in tests: duration within 1 %, sample rate as asked, SNR of a resampled sine ≥ 60 dB" for
 * render jobs. A real gateway (public port on 127.0.0.1, in-memory PGlite, filesystem store) and
 * a real Agent hosting two engines that speak a 1 kHz sine, one at 22050 Hz and one at 16000 Hz.
 * Jobs are created and their outputs read over Connect and REST.
 * Batch items in those formats are stored as files of their own and decoded too.
 * Size: 7 renders and 3 batch items of 4.5 to 6 s of audio (AAC pads its last frame by up to 1023 samples, 46 ms at
 * 22050 Hz, so 1 % needs 4.7 s or more).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { type Job, JobState, type RenderSegmentSchema } from "../../gen/voxgate/v1/job_pb.js";
import type { Agent } from "../../services/agent/agent.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { createGateway, type Gateway } from "../../services/gateway/index.js";
import { jobKeyPrefix } from "../../services/jobs/job-ids.js";
import { createFsBlobStore } from "../../services/object-store/fs-blob-store.js";
import { type DecodedAudio, probeAndDecode } from "../helpers/ffmpeg-probe.js";
import { startInProcessAgent, waitForBackendReady } from "../helpers/in-process-agent.js";
import { createSineEngine } from "../helpers/sine-engine.js";
import { channelSamples, sineSnrDb } from "../helpers/sine-signal.js";

const CLIENT_TOKEN = "vxg_render-formats-client";
const AGENT_TOKEN = "vxg_render-formats-agent";
const AGENT_ID = "sine-pair";
/** Two engines of different rates: a render that mixes them has no one native rate. */
const HIGH = { id: "sine-22k", rateHz: 22_050 };
const LOW = { id: "sine-16k", rateHz: 16_000 };
const TONE_HZ = 1000;
const PAUSE_MS = 500;
const silent = pino({ level: "silent" });

type SegmentInit = MessageInitShape<typeof RenderSegmentSchema>;

let dataDir: string;
let gateway: Gateway;
let agent: Agent;
let agentRun: Promise<void>;
let publicUrl = "";
let client: VoxgateClient;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "voxgate-render-formats-"));
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [
      { name: "app", sha256: hashToken(CLIENT_TOKEN), scopes: ["tts", "jobs"] },
      { name: "gpu", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] },
    ],
    limits: {
      maxTextChars: 5000,
      maxRequestBytes: 64 * 1024,
      maxClipBytes: 64 * 1024 * 1024,
      defaultTimeoutMs: 120_000,
      maxTimeoutMs: 120_000,
    },
    storage: { dataDir, databaseUrl: "memory:" },
    jobs: { jobPollMs: 50 },
    log: silent,
  });
  const addresses = await gateway.listen();
  publicUrl = addresses.publicUrl;
  const engines = [HIGH, LOW].map((e) =>
    createSineEngine({ id: e.id, sampleRateHz: e.rateHz, seconds: 1 }),
  );
  ({ agent, run: agentRun } = startInProcessAgent({
    agentPort: addresses.agentPort,
    token: AGENT_TOKEN,
    id: AGENT_ID,
    engines,
    slots: 4,
  }));
  await waitForBackendReady(gateway.registry, AGENT_ID);
  client = createVoxgateClient({ baseUrl: publicUrl, token: CLIENT_TOKEN, timeoutMs: 120_000 });
}, 60_000);

afterAll(async () => {
  client?.close();
  await agent?.shutdown();
  await agentRun;
  await gateway?.close(500);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** A segment of `seconds` of tone from `engine`, with the script's pause after it. */
function tone(engine: { id: string }, seconds: number): SegmentInit {
  return { text: `${seconds} seconds of tone.`, voice: "tone", engine: engine.id };
}

async function waitForJob(jobId: string): Promise<Job> {
  // A generous bound for a loaded machine; a render of these sizes takes about a second.
  const deadline = performance.now() + 90_000;
  for (;;) {
    const job = (await client.jobs.getJob({ jobId })).job;
    if (job && job.state >= JobState.SUCCEEDED) return job;
    if (performance.now() > deadline) throw new Error(`job ${jobId} did not end in 90 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Renders over Connect and reads the output back over Connect (GetJobOutput). */
async function renderOverConnect(
  segments: SegmentInit[],
  encoding: AudioEncoding,
  sampleRateHz = 0,
): Promise<{ job: Job; contentType: string; bytes: Uint8Array }> {
  const created = await client.jobs.createJob({
    spec: {
      kind: {
        case: "render",
        value: { segments, encoding, sampleRateHz, pauseBetweenMs: PAUSE_MS },
      },
    },
  });
  const job = await waitForJob(created.job?.id ?? "");
  expect(job.error?.message ?? "").toBe("");
  expect(job.state).toBe(JobState.SUCCEEDED);
  const parts: Uint8Array[] = [];
  let contentType = "";
  for await (const chunk of client.jobs.getJobOutput({ jobId: job.id })) {
    if (chunk.contentType) contentType = chunk.contentType;
    parts.push(chunk.data);
  }
  return { job, contentType, bytes: new Uint8Array(Buffer.concat(parts)) };
}

/** Length within 1 % of `seconds` (the bound), at `rateHz`, mono. */
function expectLength(decoded: DecodedAudio, rateHz: number, seconds: number): void {
  expect(decoded.sampleRateHz).toBe(rateHz);
  expect(decoded.channels).toBe(1);
  expect(decoded.durationMs).toBeGreaterThanOrEqual(seconds * 990);
  expect(decoded.durationMs).toBeLessThanOrEqual(seconds * 1010);
}

/** SNR of the sine between `fromS` and `toS` seconds of decoded mono PCM. */
function snrBetween(decoded: DecodedAudio, fromS: number, toS: number): number {
  const samples = channelSamples(decoded.pcm);
  const rate = decoded.sampleRateHz;
  return sineSnrDb(
    samples.subarray(Math.round(fromS * rate), Math.round(toS * rate)),
    rate,
    TONE_HZ,
  );
}

/** Reads the input rate an Ogg Opus stream's identification header names. */
function opusHeadInputRate(bytes: Uint8Array): number {
  const at = Buffer.from(bytes).indexOf("OpusHead");
  expect(at).toBeGreaterThan(0);
  return Buffer.from(bytes).readUInt32LE(at + 12);
}

/** Total samples a FLAC file's STREAMINFO names (36 bits; 0 means unknown). */
function flacTotalSamples(bytes: Uint8Array): number {
  expect(Buffer.from(bytes.subarray(0, 4)).toString("latin1")).toBe("fLaC");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return (view.getUint8(21) & 0x0f) * 2 ** 32 + view.getUint32(22);
}

describe("render outputs in every compressed format (Connect)", () => {
  // 3 s + 0.5 s pause + 2.5 s from the 22050 Hz engine: 6 s.
  const segments = [tone(HIGH, 3), tone(HIGH, 2.5)];
  const seconds = 6;

  it("OPUS: Ogg Opus at the next Opus rate (24 kHz), 6 s", async () => {
    const { job, contentType, bytes } = await renderOverConnect(segments, AudioEncoding.OPUS);
    expect(contentType).toBe("audio/ogg; codecs=opus");
    expect(job.output?.contentType).toBe("audio/ogg; codecs=opus");
    expect(job.output?.sizeBytes).toBe(BigInt(bytes.byteLength));
    expect(job.output?.durationMs).toBe(6000n);
    const decoded = await probeAndDecode(bytes);
    expect(decoded.codec).toBe("opus");
    expect(decoded.container).toContain("ogg");
    expect(opusHeadInputRate(bytes)).toBe(24_000);
    // Opus always decodes at 48 kHz.
    expectLength(decoded, 48_000, seconds);
  }, 120_000);

  it("FLAC: lossless at 22050 Hz, STREAMINFO names the exact length", async () => {
    const { job, contentType, bytes } = await renderOverConnect(segments, AudioEncoding.FLAC);
    expect(contentType).toBe("audio/flac");
    expect(job.output?.contentType).toBe("audio/flac");
    const decoded = await probeAndDecode(bytes);
    expect(decoded.codec).toBe("flac");
    expectLength(decoded, HIGH.rateHz, seconds);
    const frames = decoded.pcm.byteLength / 2;
    const rate = HIGH.rateHz;
    expect(frames).toBe(Math.round(rate * 3) + Math.round(rate * 0.5) + Math.round(rate * 2.5));
    expect(flacTotalSamples(bytes)).toBe(frames);
    expect(snrBetween(decoded, 0, 3)).toBeGreaterThanOrEqual(60);
  }, 120_000);

  it("AAC: ADTS at 22050 Hz, 6 s", async () => {
    const { job, contentType, bytes } = await renderOverConnect(segments, AudioEncoding.AAC);
    expect(contentType).toBe("audio/aac");
    expect(job.output?.contentType).toBe("audio/aac");
    const decoded = await probeAndDecode(bytes);
    expect(decoded.codec).toBe("aac");
    expectLength(decoded, HIGH.rateHz, seconds);
  }, 120_000);
});

describe("render outputs over REST", () => {
  it("OPUS at sample_rate_hz 48000: created, downloaded with its content type", async () => {
    const auth = { authorization: `Bearer ${CLIENT_TOKEN}` };
    const created = await fetch(`${publicUrl}/v1/jobs`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({
        spec: {
          render: {
            segments: [tone(HIGH, 2), tone(LOW, 2.5)],
            pauseBetweenMs: PAUSE_MS,
            encoding: "AUDIO_ENCODING_OPUS",
            sampleRateHz: 48_000,
          },
        },
      }),
    });
    expect(created.status).toBe(200);
    const jobId = ((await created.json()) as { job: { id: string } }).job.id;
    const job = await waitForJob(jobId);
    expect(job.state).toBe(JobState.SUCCEEDED);
    const output = await fetch(`${publicUrl}/v1/jobs/${jobId}/output`, { headers: auth });
    expect(output.status).toBe(200);
    expect(output.headers.get("content-type")).toBe("audio/ogg; codecs=opus");
    const bytes = new Uint8Array(await output.arrayBuffer());
    expect(opusHeadInputRate(bytes)).toBe(48_000);
    const decoded = await probeAndDecode(bytes);
    expect(decoded.codec).toBe("opus");
    expectLength(decoded, 48_000, 5);
  }, 120_000);
});

describe("renders that mix engines of different rates, without sample_rate_hz", () => {
  it("WAV takes the first spoken segment's rate (16 kHz); the 22050 Hz segment is resampled", async () => {
    const { job, contentType, bytes } = await renderOverConnect(
      [{ text: "", pauseAfterMs: 250 }, tone(LOW, 2), tone(HIGH, 2.5)],
      AudioEncoding.WAV,
    );
    expect(contentType).toBe("audio/wav");
    expect(job.output?.durationMs).toBe(5250n);
    const decoded = await probeAndDecode(bytes);
    expectLength(decoded, LOW.rateHz, 5.25);
    // Exact frames: 22050 Hz audio converts to round(frames × 16000 / 22050).
    expect(decoded.pcm.byteLength / 2).toBe(
      4000 + 32_000 + 8000 + Math.round((Math.round(HIGH.rateHz * 2.5) * 16_000) / 22_050),
    );
    // Native segment, then the converted one (after the 250 ms and 500 ms pauses).
    expect(snrBetween(decoded, 0.25, 2.25)).toBeGreaterThanOrEqual(60);
    expect(snrBetween(decoded, 2.75, 5.25)).toBeGreaterThanOrEqual(60);
  }, 120_000);

  it("FLAC at 22050 Hz with a 16 kHz segment upsampled; OPUS joins at its codec rate", async () => {
    const segments = [tone(HIGH, 2), tone(LOW, 3)];
    const flac = await renderOverConnect(segments, AudioEncoding.FLAC);
    const decoded = await probeAndDecode(flac.bytes);
    expectLength(decoded, HIGH.rateHz, 5.5);
    expect(snrBetween(decoded, 2.5, 5.5)).toBeGreaterThanOrEqual(60);

    // 22050 Hz is not an Opus rate: both segments go to 24 kHz, each converted once.
    const opus = await renderOverConnect(segments, AudioEncoding.OPUS);
    expect(opusHeadInputRate(opus.bytes)).toBe(24_000);
    expectLength(await probeAndDecode(opus.bytes), 48_000, 5.5);
  }, 120_000);
});

describe("batch items in the compressed formats", () => {
  it("stores each item as the file its encoding names (opus, flac, aac), each decodable", async () => {
    const text = "5 seconds of tone.";
    const created = await client.jobs.createJob({
      spec: {
        kind: {
          case: "batch",
          value: {
            items: [AudioEncoding.OPUS, AudioEncoding.FLAC, AudioEncoding.AAC].map((encoding) => ({
              text,
              voice: "tone",
              engine: HIGH.id,
              encoding,
            })),
          },
        },
      },
    });
    const job = await waitForJob(created.job?.id ?? "");
    expect(job.state).toBe(JobState.SUCCEEDED);
    const store = createFsBlobStore({ rootDir: join(dataDir, "blobs") });
    try {
      const prefix = `${jobKeyPrefix(job.id)}items/`;
      const keys = (await store.list(prefix)).items.map((item) => item.key.slice(prefix.length));
      expect(keys).toEqual(["000000.opus", "000001.flac", "000002.aac"]);
      for (const [key, codec] of [
        ["000000.opus", "opus"],
        ["000001.flac", "flac"],
        ["000002.aac", "aac"],
      ] as const) {
        const parts: Uint8Array[] = [];
        for await (const chunk of await store.get(`${prefix}${key}`)) parts.push(chunk);
        const decoded = await probeAndDecode(new Uint8Array(Buffer.concat(parts)));
        expect(decoded.codec).toBe(codec);
        expectLength(decoded, codec === "opus" ? 48_000 : HIGH.rateHz, 5);
      }
    } finally {
      await store.close();
    }
  }, 120_000);
});
