import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  createServiceImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AudioEncoding } from "../../../gen/voxgate/v1/audio_pb.js";
import { type Job, JobSchema, RenderJobSpecSchema } from "../../../gen/voxgate/v1/job_pb.js";
import { type SynthesizeSpeechRequest, TtsService } from "../../../gen/voxgate/v1/tts_pb.js";
import { VoiceService } from "../../../gen/voxgate/v1/voice_pb.js";
import { parseWav, readMp3Frames } from "../../audio/index.js";
import type { Principal } from "../../auth/token-store.js";
import { settingDefaults } from "../../config/settings.js";
import { kCallContext } from "../../gateway/call-context.js";
import { gatewaySettings } from "../../gateway/gateway-settings.js";
import { createInProcessTransport } from "../../gateway/in-process-transport.js";
import type { BlobStore } from "../../object-store/blob-store.js";
import { createFsBlobStore } from "../../object-store/fs-blob-store.js";
import type { JobContext } from "../job-executor.js";
import type { RenderLimits } from "./executor-deps.js";
import { renderLimitsFromSettings } from "./executor-deps.js";
import { createRenderExecutor } from "./render-executor.js";

const RATE = 22_050;
const OWNER: Principal = {
  name: "storyforge",
  tenant: "storyforge",
  scopes: new Set(["jobs", "tts"]),
};

/**
 * Frames a fake segment has: the text is `<frames>` or `<frames>@<rate>`, so each test states the
 * exact audio it expects. Every sample of segment `i` has the value `i + 1`, so the joined output
 * shows where each segment landed.
 */
function parseText(text: string): { frames: number; rate: number } {
  const [frames = "0", rate = String(RATE)] = text.split("@");
  return { frames: Number(frames), rate: Number(rate) };
}

interface FakeCall {
  text: string;
  requestId: string | undefined;
  principal: string | undefined;
  request: SynthesizeSpeechRequest;
}

/** A TtsService whose behaviour each test adjusts; records every call. */
function createFakeTts() {
  const calls: FakeCall[] = [];
  const aborted: string[] = [];
  const state = {
    /** Throws for these texts. */
    failOn: new Map<string, ConnectError>(),
    /** Calls with these texts never answer until their signal aborts. */
    hangOn: new Set<string>(),
    /** Calls with these texts answer stereo (each frame twice). */
    stereo: new Set<string>(),
  };
  const impl: Pick<ServiceImpl<typeof TtsService>, "synthesize"> = {
    async synthesize(request, context) {
      const call = context.values.get(kCallContext);
      calls.push({
        text: request.text,
        requestId: call?.requestId,
        principal: call?.principal?.name,
        request,
      });
      const failure = state.failOn.get(request.text);
      if (failure) throw failure;
      if (state.hangOn.has(request.text)) {
        await new Promise<void>((resolve) => {
          context.signal.addEventListener("abort", () => resolve(), { once: true });
        });
        aborted.push(request.text);
        throw new ConnectError("cancelled", Code.Canceled);
      }
      const [spec = "", value = "1"] = request.text.split("#");
      const { frames, rate } = parseText(spec);
      const channels = state.stereo.has(request.text) ? 2 : 1;
      const pcm = new Int16Array(frames * channels).fill(Number(value));
      return {
        contentType: `audio/L16; rate=${rate}; channels=${channels}`,
        data: new Uint8Array(pcm.buffer),
      };
    },
  };
  const transport = createInProcessTransport({
    services: [
      createServiceImplSpec<typeof TtsService>(TtsService, impl as ServiceImpl<typeof TtsService>),
    ],
    interceptors: [],
  });
  return { client: createClient(TtsService, transport), calls, aborted, state };
}

interface Progress {
  done: number;
  total: number;
  message: string;
}

let root: string;
let blobs: BlobStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "voxgate-render-"));
  blobs = createFsBlobStore({ rootDir: root });
});

afterEach(async () => {
  await blobs.close();
  await rm(root, { recursive: true, force: true });
});

function renderJob(spec: MessageInitShape<typeof RenderJobSpecSchema>): Job {
  return create(JobSchema, {
    id: "job_test1",
    spec: { kind: { case: "render", value: create(RenderJobSpecSchema, spec) } },
  });
}

function contextFor(signal = new AbortController().signal) {
  const progress: Progress[] = [];
  const context: JobContext = {
    signal,
    log: pino({ level: "silent" }),
    blobs,
    keyPrefix: "jobs/test1/",
    owner: OWNER,
    async reportProgress(done, total, message) {
      progress.push({ done, total, message });
    },
  };
  return { context, progress };
}

function executorWith(tts: ReturnType<typeof createFakeTts>, limits: Partial<RenderLimits> = {}) {
  const voices = createClient(
    VoiceService,
    createInProcessTransport({ services: [], interceptors: [] }),
  );
  return createRenderExecutor({
    tts: tts.client,
    voices,
    limits: { ...renderLimitsFromSettings(settingDefaults(gatewaySettings)), ...limits },
  });
}

async function readObject(key: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of await blobs.get(key)) parts.push(chunk);
  return Buffer.concat(parts);
}

async function keysUnder(prefix: string): Promise<string[]> {
  return (await blobs.list(prefix)).items.map((item) => item.key);
}

describe("render executor", () => {
  it("joins segments in order with exact silences and describes the stored WAV", async () => {
    const tts = createFakeTts();
    const executor = executorWith(tts);
    const job = renderJob({
      segments: [
        { text: "1000#1", voice: "en-us" },
        { text: "2205#2", pauseAfterMs: 250 },
        { text: "333#3", voice: "de" },
        { text: "", pauseAfterMs: 10 },
        { text: "17#5" },
      ],
      defaultVoice: "en-gb",
      pauseBetweenMs: 100,
    });
    const { context, progress } = contextFor();
    const result = await executor.run(job, context);
    // The pause-only segment counts as done from the start.
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3, 4, 5]);

    // Pauses: 100 ms between (2205 frames), 250 ms own (5512.5 → 5513), 100 between, the pause
    // segment's own 10 ms (220.5 → 221, rounded half up), and none after the last segment.
    const expected: Array<[value: number, frames: number]> = [
      [1, 1000],
      [0, 2205],
      [2, 2205],
      [0, 5513],
      [3, 333],
      [0, 2205],
      [0, 221],
      [5, 17],
    ];
    const totalFrames = expected.reduce((sum, [, frames]) => sum + frames, 0);
    expect(result.outputKey).toBe("jobs/test1/output.wav");
    const bytes = await readObject("jobs/test1/output.wav");
    const info = parseWav(bytes);
    expect(info).toMatchObject({ sampleRateHz: RATE, channels: 1, bitsPerSample: 16 });
    expect(info.dataBytes).toBe(totalFrames * 2);
    const samples = new Int16Array(
      bytes.buffer.slice(bytes.byteOffset + info.dataOffset, bytes.byteOffset + bytes.byteLength),
    );
    let offset = 0;
    for (const [value, frames] of expected) {
      const run = samples.subarray(offset, offset + frames);
      expect(
        run.every((sample) => sample === value),
        `${frames} frames of ${value} at ${offset}`,
      ).toBe(true);
      offset += frames;
    }
    expect(offset).toBe(samples.length);
    expect(result.output).toEqual({
      contentType: "audio/wav",
      sizeBytes: BigInt(bytes.byteLength),
      durationMs: BigInt(Math.round((totalFrames / RATE) * 1000)),
      digest: createHash("sha256").update(bytes).digest("hex"),
      itemCount: 5,
    });
    // Voices: own, else the script's default; the pause-only segment called no backend.
    expect(tts.calls.map((c) => [c.text, c.request.voice, c.request.encoding])).toEqual(
      expect.arrayContaining([
        ["1000#1", "en-us", AudioEncoding.PCM],
        ["2205#2", "en-gb", AudioEncoding.PCM],
        ["333#3", "de", AudioEncoding.PCM],
        ["17#5", "en-gb", AudioEncoding.PCM],
      ]),
    );
    expect(tts.calls).toHaveLength(4);
    // Checkpoints are gone: exactly one object is left under the job's prefix.
    expect(await keysUnder("jobs/test1/")).toEqual(["jobs/test1/output.wav"]);
  });

  it("calls TtsService as the job's owner, with a request id naming job and segment", async () => {
    const tts = createFakeTts();
    await executorWith(tts).run(
      renderJob({ segments: [{ text: "10" }, { text: "20" }] }),
      contextFor().context,
    );
    expect(tts.calls.map((c) => [c.requestId, c.principal]).sort()).toEqual([
      ["job_test1.s0", "storyforge"],
      ["job_test1.s1", "storyforge"],
    ]);
  });

  it("reports progress in order, one more segment each time, ending at the total", async () => {
    const tts = createFakeTts();
    const segments = Array.from({ length: 9 }, (_, i) => ({ text: `${(9 - i) * 50}#${i}` }));
    const { context, progress } = contextFor();
    await executorWith(tts, { concurrency: 3 }).run(renderJob({ segments }), context);
    expect(progress.map((p) => p.done)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(new Set(progress.map((p) => p.total))).toEqual(new Set([9]));
  });

  it("resumes after a failed attempt without synthesizing finished segments again", async () => {
    const tts = createFakeTts();
    const segments = Array.from({ length: 8 }, (_, i) => ({ text: `${100 + i}#${i + 1}` }));
    tts.state.failOn.set("105#6", new ConnectError("backend went away", Code.Unavailable));
    const executor = executorWith(tts, { concurrency: 2 });
    const first = contextFor();
    await expect(executor.run(renderJob({ segments }), first.context)).rejects.toMatchObject({
      code: Code.Unavailable,
      rawMessage: "segment 6 of 8: backend went away",
    });
    const stored = await keysUnder("jobs/test1/segments/");
    expect(stored.length).toBeGreaterThanOrEqual(1);
    expect(stored.length).toBeLessThan(8);
    expect(await keysUnder("jobs/test1/output")).toEqual([]);
    const firstRunTexts = tts.calls.map((c) => c.text);

    tts.state.failOn.clear();
    tts.calls.length = 0;
    const second = contextFor();
    const result = await executor.run(renderJob({ segments }), second.context);

    const storedIndexes = new Set(stored.map((key) => Number(key.slice(-10, -4))));
    const redone = tts.calls.map((c) => Number(c.text.split("#")[1]) - 1);
    // Exactly the segments without a checkpoint were synthesized again, each once.
    expect(redone.sort((a, b) => a - b)).toEqual(
      [...Array(8).keys()].filter((i) => !storedIndexes.has(i)),
    );
    expect(firstRunTexts).toContain("105#6");
    // The resumed run starts its progress at what was already done.
    expect(second.progress[0]?.done).toBe(stored.length);
    expect(second.progress.at(-1)?.done).toBe(8);
    // Same output as a render that never failed.
    const clean = createFakeTts();
    await blobs.delete("jobs/test1/output.wav");
    const again = await executorWith(clean).run(renderJob({ segments }), contextFor().context);
    expect(again.output.digest).toBe(result.output.digest);
    expect(clean.calls).toHaveLength(8);
  });

  it("describes an output an earlier attempt stored instead of rendering again", async () => {
    const tts = createFakeTts();
    const job = renderJob({ segments: [{ text: "100" }, { text: "200" }] });
    const first = await executorWith(tts).run(job, contextFor().context);
    tts.calls.length = 0;
    const second = await executorWith(tts).run(job, contextFor().context);
    expect(tts.calls).toHaveLength(0);
    expect(second).toEqual(first);
  });

  it("stops at once when the job's signal aborts, cancelling the calls in flight", async () => {
    const tts = createFakeTts();
    const segments = Array.from({ length: 6 }, (_, i) => ({ text: `hang${i}` }));
    for (const s of segments) tts.state.hangOn.add(s.text);
    const controller = new AbortController();
    const { context } = contextFor(controller.signal);
    const running = executorWith(tts, { concurrency: 2 }).run(renderJob({ segments }), context);
    await expect.poll(() => tts.calls.length).toBe(2);
    const reason = new Error("job cancelled");
    controller.abort(reason);
    await expect(running).rejects.toBe(reason);
    // Both calls in flight saw their signal abort; no further segment was started.
    expect(tts.aborted.sort()).toEqual(["hang0", "hang1"]);
    expect(tts.calls).toHaveLength(2);
    expect(await keysUnder("jobs/test1/")).toEqual([]);
  });

  it("converts segments of other rates to the first spoken segment's rate, whatever finished first", async () => {
    const tts = createFakeTts();
    // The rule takes script order (the first segment that speaks), not the order calls end in.
    const job = renderJob({
      segments: [
        { text: "", pauseAfterMs: 100 },
        { text: `${RATE}#1000` },
        { text: "12000@24000#2000" },
        { text: "8000@16000#3000" },
      ],
    });
    const { context } = contextFor();
    const result = await executorWith(tts, { concurrency: 2 }).run(job, context);
    const bytes = await readObject("jobs/test1/output.wav");
    const info = parseWav(bytes);
    expect(info.sampleRateHz).toBe(RATE);
    // 100 ms of pause, 1 s at 22050, 0.5 s from 24 kHz and 0.5 s from 16 kHz, each converted to
    // round(frames × 22050 / rate) frames.
    const pause = 2205;
    const converted = [RATE, Math.round((12000 * RATE) / 24000), Math.round((8000 * RATE) / 16000)];
    expect(info.dataBytes / 2).toBe(pause + converted.reduce((a, b) => a + b, 0));
    expect(result.output.durationMs).toBe(2100n);
    // The converted runs keep their level (a constant stays a constant, away from the edges).
    const samples = new Int16Array(
      bytes.buffer.slice(bytes.byteOffset + info.dataOffset, bytes.byteOffset + bytes.byteLength),
    );
    let offset = pause;
    for (const [i, frames] of converted.entries()) {
      const middle = samples.subarray(offset + 200, offset + frames - 200);
      const level = (i + 1) * 1000;
      expect(middle.every((sample) => Math.abs(sample - level) <= level * 0.01)).toBe(true);
      offset += frames;
    }
    expect(await keysUnder("jobs/test1/")).toEqual(["jobs/test1/output.wav"]);
  });

  it("resumes a mixed-rate render at the script's first rate, to the same output as a clean run", async () => {
    const tts = createFakeTts();
    const segments = [
      { text: "2000@16000#1000" },
      { text: "3000#2000" },
      { text: "2400@24000#3000" },
      { text: "1000@16000#4000" },
    ];
    // The first segment fails: what the first attempt stores is all at other rates, yet the
    // re-run must still take segment 1's 16 kHz.
    tts.state.failOn.set("2000@16000#1000", new ConnectError("busy", Code.Unavailable));
    const executor = executorWith(tts, { concurrency: 4 });
    await expect(executor.run(renderJob({ segments }), contextFor().context)).rejects.toMatchObject(
      { code: Code.Unavailable },
    );
    tts.state.failOn.clear();
    const resumed = await executor.run(renderJob({ segments }), contextFor().context);
    const info = parseWav(await readObject("jobs/test1/output.wav"));
    expect(info.sampleRateHz).toBe(16_000);
    const frames =
      2000 + Math.round((3000 * 16_000) / RATE) + Math.round((2400 * 16_000) / 24_000) + 1000;
    expect(info.dataBytes / 2).toBe(frames);

    await blobs.delete("jobs/test1/output.wav");
    const clean = await executorWith(createFakeTts()).run(
      renderJob({ segments }),
      contextFor().context,
    );
    expect(clean.output.digest).toBe(resumed.output.digest);
  });

  it("fails with FAILED_PRECONDITION naming both when segments differ in channels", async () => {
    const tts = createFakeTts();
    tts.state.stereo.add("100");
    const { context } = contextFor();
    const job = renderJob({ segments: [{ text: "50" }, { text: "100" }] });
    const error = await executorWith(tts, { concurrency: 1 })
      .run(job, context)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.FailedPrecondition);
    expect((error as ConnectError).rawMessage).toMatch(/segment 2 .*2-channel.*segment 1 .*mono/);
    expect(await keysUnder("jobs/test1/output")).toEqual([]);
  });

  it("turns UNIMPLEMENTED from TtsService (no resampler) into FAILED_PRECONDITION", async () => {
    const tts = createFakeTts();
    tts.state.failOn.set(
      "100",
      new ConnectError("sample_rate_hz 16000 needs resampling", Code.Unimplemented),
    );
    const job = renderJob({ segments: [{ text: "100" }], sampleRateHz: 16_000 });
    await expect(executorWith(tts).run(job, contextFor().context)).rejects.toMatchObject({
      code: Code.FailedPrecondition,
    });
    expect(tts.calls[0]?.request.sampleRateHz).toBe(16_000);
  });

  it("encodes MP3 whose frames carry the joined duration", async () => {
    const tts = createFakeTts();
    const job = renderJob({
      segments: [{ text: `${RATE}#1000` }, { text: `${RATE}#-1000` }],
      pauseBetweenMs: 500,
      encoding: AudioEncoding.MP3,
    });
    const result = await executorWith(tts).run(job, contextFor().context);
    expect(result.outputKey).toBe("jobs/test1/output.mp3");
    const bytes = await readObject("jobs/test1/output.mp3");
    const info = readMp3Frames(bytes);
    expect(info.sampleRateHz).toBe(RATE);
    expect(result.output.contentType).toBe("audio/mpeg");
    expect(result.output.durationMs).toBe(2500n);
    // MP3 pads the end to whole frames: at most one frame (1152 samples) more, never less.
    expect(info.durationMs).toBeGreaterThanOrEqual(2500);
    expect(info.durationMs).toBeLessThan(2500 + (2 * 1152 * 1000) / RATE);
    expect(await keysUnder("jobs/test1/")).toEqual(["jobs/test1/output.mp3"]);
  });

  it.each([
    [
      "too many segments",
      { segments: [{ text: "1" }, { text: "2" }, { text: "3" }] },
      /3 segments; the limit is 2 .*VOXGATE_MAX_RENDER_SEGMENTS/,
    ],
    ["no segments", { segments: [] }, /no segments/],
    [
      "a long pause",
      { segments: [{ text: "1", pauseAfterMs: 1001 }] },
      /segments\[0\]\.pause_after_ms is 1001 ms.*VOXGATE_MAX_JOB_PAUSE_MS/,
    ],
    ["a negative pause", { segments: [{ text: "1" }], pauseBetweenMs: -1 }, /pause_between_ms/],
    [
      "a long text",
      { segments: [{ text: "x".repeat(51) }] },
      /51 characters; the limit is 50 .*VOXGATE_MAX_TEXT_CHARS/,
    ],
    ["empty text without a pause", { segments: [{ text: " " }] }, /text is empty/],
    [
      "pauses only, without a rate",
      { segments: [{ text: "", pauseAfterMs: 5 }] },
      /set sample_rate_hz/,
    ],
    [
      "an encoding without an encoder",
      { segments: [{ text: "1" }], encoding: AudioEncoding.PCM },
      /PCM .*use WAV, MP3, OPUS, FLAC or AAC/,
    ],
  ])("refuses %s with INVALID_ARGUMENT, calling and storing nothing", async (_, spec, message) => {
    const tts = createFakeTts();
    const executor = executorWith(tts, { maxSegments: 2, maxPauseMs: 1000, maxTextChars: 50 });
    const job = renderJob(spec as Parameters<typeof renderJob>[0]);
    const spec1 = job.spec;
    if (!spec1) throw new Error("no spec");
    expect(() => executor.validate?.(spec1)).toThrow(message);
    const error = await executor.run(job, contextFor().context).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toMatch(message);
    expect(tts.calls).toHaveLength(0);
    expect(await keysUnder("jobs/")).toEqual([]);
  });
});
