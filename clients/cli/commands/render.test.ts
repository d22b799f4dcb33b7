import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AudioEncoding } from "../../../gen/voxgate/v1/audio_pb.js";
import {
  type CreateJobRequest,
  type Job,
  type JobErrorSchema,
  type JobOutputSchema,
  JobSchema,
  JobService,
  JobState,
  type RenderJobSpec,
} from "../../../gen/voxgate/v1/job_pb.js";
import { type FakeGateway, startFakeGateway } from "../../testing/fake-gateway.js";
import { createTestIo } from "../../testing/test-io.js";
import { main } from "../main.js";

const TOKEN = "vxg_render-test";
const AUDIO = new TextEncoder().encode("RIFF....WAVEfake audio bytes");
const DIGEST = createHash("sha256").update(AUDIO).digest("hex");

const SCRIPT = {
  defaultVoice: "en-us",
  pauseBetweenMs: 300,
  segments: [
    { text: "Once upon a time." },
    { text: "There was a gateway.", voice: "en-gb", pauseAfterMs: 800 },
    { text: "The end.", speed: 0.9 },
  ],
};

/** The job as the fake's WatchJob reports it, step by step. */
/** Fields a test sets on top of the basics. */
interface Extra {
  output?: MessageInitShape<typeof JobOutputSchema>;
  error?: MessageInitShape<typeof JobErrorSchema>;
}

function jobAt(state: JobState, done: number, extra: Extra = {}): Job {
  return create(JobSchema, {
    id: "job_abc",
    state,
    progress: { doneUnits: done, totalUnits: 3, message: `segment ${done} of 3 rendered` },
    ...extra,
  });
}

const SUCCEEDED = jobAt(JobState.SUCCEEDED, 3, {
  output: {
    contentType: "audio/wav",
    sizeBytes: BigInt(AUDIO.length),
    durationMs: 4200n,
    digest: DIGEST,
  },
});

interface Recorded {
  creates: CreateJobRequest[];
  watches: number;
  outputs: number;
}

function fakeJobs(
  recorded: Recorded,
  options: { final?: Job; audio?: Uint8Array } = {},
): Partial<ServiceImpl<typeof JobService>> {
  const final = options.final ?? SUCCEEDED;
  return {
    async createJob(request) {
      recorded.creates.push(request);
      return { job: jobAt(JobState.QUEUED, 0) };
    },
    async *watchJob(request) {
      recorded.watches++;
      expect(request.jobId).toBe("job_abc");
      yield { job: jobAt(JobState.QUEUED, 0) };
      yield { job: jobAt(JobState.RUNNING, 1) };
      yield { job: jobAt(JobState.RUNNING, 2) };
      yield { job: final };
    },
    async getJob() {
      return { job: final };
    },
    async *getJobOutput() {
      recorded.outputs++;
      const audio = options.audio ?? AUDIO;
      yield { contentType: "audio/wav", data: audio.subarray(0, 10) };
      yield { data: audio.subarray(10) };
    },
  };
}

function renderSpecOf(request: CreateJobRequest | undefined): RenderJobSpec {
  if (request?.spec?.kind.case !== "render") throw new Error("no render spec was sent");
  return request.spec.kind.value;
}

let gateway: FakeGateway | undefined;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "voxgate-render-cli-"));
});

afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function start(service: Partial<ServiceImpl<typeof JobService>>) {
  gateway = await startFakeGateway({
    token: TOKEN,
    routes: (router) => router.service(JobService, service),
  });
  return { VOXGATE_URL: gateway.url, VOXGATE_TOKEN: TOKEN };
}

async function writeScript(script: unknown = SCRIPT): Promise<string> {
  const path = join(dir, "story.json");
  await writeFile(path, typeof script === "string" ? script : JSON.stringify(script));
  return path;
}

describe("voxgate render", () => {
  it("sends an SFML script and its cast map as render.sfml and render.cast", async () => {
    const recorded: Recorded = { creates: [], watches: 0, outputs: 0 };
    const t = createTestIo({ env: await start(fakeJobs(recorded)) });
    const sfml =
      "# SFML v1\ncast:\n  Narrator: tg\n  Maris: lv\nscene scene-1:\n  Maris:\n    - Hi.\n";
    const story = join(dir, "story.sfml");
    const cast = join(dir, "cast.json");
    await writeFile(story, sfml);
    await writeFile(
      cast,
      JSON.stringify({ Narrator: "en-us", Maris: { voice: "en-gb", engine: "espeak-ng" } }),
    );
    expect(await main(["render", story, "--cast", cast, "-o", join(dir, "s.mp3")], t.io)).toBe(0);
    const spec = renderSpecOf(recorded.creates[0]);
    expect(spec.sfml).toBe(sfml);
    expect(spec.cast.Narrator).toMatchObject({ voice: "en-us", engine: "" });
    expect(spec.cast.Maris).toMatchObject({ voice: "en-gb", engine: "espeak-ng" });
    expect(spec.encoding).toBe(AudioEncoding.MP3);
    expect(t.stderr()).toContain("render job job_abc: an SFML script");
  });

  it("refuses a broken SFML script naming line, column and rule, before any call", async () => {
    const recorded: Recorded = { creates: [], watches: 0, outputs: 0 };
    const t = createTestIo({ env: await start(fakeJobs(recorded)) });
    const story = join(dir, "bad.sfml");
    const cast = join(dir, "cast.json");
    await writeFile(
      story,
      "# SFML v1\ncast:\n  Narrator: tg\nscene scene-1:\n  Narrator:\n    - {delivery=loud} Hi.\n",
    );
    await writeFile(cast, JSON.stringify({ Narrator: "en-us" }));
    expect(await main(["render", story, "--cast", cast, "-o", join(dir, "s.wav")], t.io)).not.toBe(
      0,
    );
    expect(t.stderr()).toContain("line 6, column 7: bad_delivery");
    expect(recorded.creates).toEqual([]);
  });

  it("creates a render job, prints progress lines in order and saves the checked output", async () => {
    const recorded: Recorded = { creates: [], watches: 0, outputs: 0 };
    const t = createTestIo({ env: await start(fakeJobs(recorded)) });
    const out = join(dir, "story.wav");
    expect(await main(["render", await writeScript(), "-o", out], t.io)).toBe(0);

    expect(await readFile(out)).toEqual(Buffer.from(AUDIO));
    const [request] = recorded.creates;
    expect(request?.requestId).toMatch(/^cli-[0-9a-f-]{36}$/);
    expect(request?.spec?.kind.case).toBe("render");
    const spec = renderSpecOf(request);
    expect(spec.defaultVoice).toBe("en-us");
    expect(spec.segments).toMatchObject([
      { text: "Once upon a time." },
      { text: "There was a gateway.", voice: "en-gb", pauseAfterMs: 800 },
      { text: "The end.", speed: expect.closeTo(0.9, 5) },
    ]);
    expect(spec.encoding).toBe(AudioEncoding.UNSPECIFIED);
    const lines = t.stderr().split("\n");
    expect(lines.slice(0, 5)).toEqual([
      "render job job_abc: 3 segments",
      "job_abc queued 0/3: segment 0 of 3 rendered",
      "job_abc running 1/3: segment 1 of 3 rendered",
      "job_abc running 2/3: segment 2 of 3 rendered",
      "job_abc succeeded 3/3: segment 3 of 3 rendered",
    ]);
    expect(lines[5]).toMatch(
      /^wrote .*story\.wav: 28 bytes, 4\.20 s of audio \(audio\/wav\), 3 segments, job job_abc/,
    );
    expect(t.stdout()).toBe("");
    expect(gateway?.calls.map((c) => c.authorization)).toEqual(Array(3).fill(`Bearer ${TOKEN}`));
  });

  it("draws a progress bar in place when stderr is a terminal", async () => {
    const recorded: Recorded = { creates: [], watches: 0, outputs: 0 };
    const t = createTestIo({ env: await start(fakeJobs(recorded)) });
    Object.assign(t.io.stderr, { isTTY: true });
    expect(await main(["render", await writeScript(), "-o", join(dir, "a.wav")], t.io)).toBe(0);
    expect(t.stderr()).toContain(`\r[${"#".repeat(20)}${"-".repeat(10)}] 2/3 running`);
    expect(t.stderr()).toContain(`\r[${"#".repeat(30)}] 3/3 succeeded`);
  });

  it.each([
    [["--format", "mp3"], "x.wav", AudioEncoding.MP3],
    [[], "x.mp3", AudioEncoding.MP3],
    [["--format", "wav"], "x.mp3", AudioEncoding.WAV],
    [["--format", "opus"], "x.wav", AudioEncoding.OPUS],
    [[], "x.ogg", AudioEncoding.OPUS],
    [[], "x.FLAC", AudioEncoding.FLAC],
    [[], "x.aac", AudioEncoding.AAC],
    [[], "x.m4a", AudioEncoding.UNSPECIFIED],
  ])("with %j and -o %s asks for encoding %i", async (flags, file, encoding) => {
    const recorded: Recorded = { creates: [], watches: 0, outputs: 0 };
    const t = createTestIo({ env: await start(fakeJobs(recorded)) });
    const args = ["render", await writeScript(), "-o", join(dir, file), ...flags];
    expect(await main(args, t.io)).toBe(0);
    expect(renderSpecOf(recorded.creates[0]).encoding).toBe(encoding);
  });

  it("--no-wait prints the job id and neither watches nor downloads", async () => {
    const recorded: Recorded = { creates: [], watches: 0, outputs: 0 };
    const t = createTestIo({ env: await start(fakeJobs(recorded)) });
    expect(await main(["render", await writeScript(), "--no-wait"], t.io)).toBe(0);
    expect(t.stdout()).toBe("job_abc\n");
    expect(t.stderr()).toContain("voxgate jobs watch job_abc");
    expect(recorded).toMatchObject({ watches: 0, outputs: 0 });
    expect(recorded.creates).toHaveLength(1);
  });

  it("fails with the job's error and leaves no file when the job failed", async () => {
    const recorded: Recorded = { creates: [], watches: 0, outputs: 0 };
    const failed = jobAt(JobState.FAILED, 2, {
      error: { code: Code.FailedPrecondition, message: "segment 3 came at 24000 Hz" },
    });
    const t = createTestIo({ env: await start(fakeJobs(recorded, { final: failed })) });
    expect(await main(["render", await writeScript(), "-o", join(dir, "s.wav")], t.io)).toBe(1);
    expect(t.stderr()).toContain(
      "voxgate render: job job_abc failed (FailedPrecondition): segment 3 came at 24000 Hz\n",
    );
    expect(recorded.outputs).toBe(0);
    expect(await readdir(dir)).toEqual(["story.json"]);
  });

  it("refuses output whose sha256 differs from the job's digest, leaving no file", async () => {
    const recorded: Recorded = { creates: [], watches: 0, outputs: 0 };
    const damaged = new TextEncoder().encode("RIFF....WAVEfake audio bytez");
    const t = createTestIo({ env: await start(fakeJobs(recorded, { audio: damaged })) });
    expect(await main(["render", await writeScript(), "-o", join(dir, "s.wav")], t.io)).toBe(1);
    expect(t.stderr()).toContain("arrived damaged");
    expect(await readdir(dir)).toEqual(["story.json"]);
  });

  it.each([
    ["not JSON", "{", /story\.json is not valid JSON/],
    ["an unknown field", { segmentz: [] }, /is not a render script/],
    ["a wrong type", { segments: "all of them" }, /is not a render script/],
  ])("refuses a script with %s before calling the gateway", async (_, script, message) => {
    const recorded: Recorded = { creates: [], watches: 0, outputs: 0 };
    const t = createTestIo({ env: await start(fakeJobs(recorded)) });
    const path = await writeScript(script);
    expect(await main(["render", path, "-o", join(dir, "s.wav")], t.io)).toBe(1);
    expect(t.stderr()).toMatch(message);
    expect(gateway?.calls).toEqual([]);
  });

  it.each([
    [["render"], /give the script file/],
    [["render", "story.json"], /pass -o FILE/],
    [["render", "story.json", "-o", "x.wav", "--format", "m4a"], /--format/],
    [["render", "a.json", "b.json", "-o", "x.wav"], /unexpected argument "b.json"/],
  ])("%j is a usage error (exit 2) that calls nothing", async (args, message) => {
    const recorded: Recorded = { creates: [], watches: 0, outputs: 0 };
    const t = createTestIo({ env: await start(fakeJobs(recorded)) });
    expect(await main(args, t.io)).toBe(2);
    expect(t.stderr()).toMatch(message);
    expect(gateway?.calls).toEqual([]);
  });

  it("refuses an output path in a missing directory before creating the job", async () => {
    const recorded: Recorded = { creates: [], watches: 0, outputs: 0 };
    const t = createTestIo({ env: await start(fakeJobs(recorded)) });
    const args = ["render", await writeScript(), "-o", join(dir, "nope", "s.wav")];
    expect(await main(args, t.io)).toBe(1);
    expect(t.stderr()).toContain("its directory does not exist");
    expect(gateway?.calls).toEqual([]);
  });

  it("shows the gateway's INVALID_ARGUMENT message as is", async () => {
    const t = createTestIo({
      env: await start({
        async createJob() {
          throw new ConnectError(
            "render has 3 segments; the limit is 2 (VOXGATE_MAX_RENDER_SEGMENTS)",
            Code.InvalidArgument,
          );
        },
      }),
    });
    expect(await main(["render", await writeScript(), "-o", join(dir, "s.wav")], t.io)).toBe(1);
    expect(t.stderr()).toBe(
      "voxgate render: render has 3 segments; the limit is 2 (VOXGATE_MAX_RENDER_SEGMENTS)\n",
    );
  });
});
