import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type Job,
  type JobErrorSchema,
  JobKind,
  type JobOutputSchema,
  JobSchema,
  JobService,
  JobState,
  type ListJobsRequest,
} from "../../../gen/voxgate/v1/job_pb.js";
import { type FakeGateway, startFakeGateway } from "../../testing/fake-gateway.js";
import { createTestIo } from "../../testing/test-io.js";
import { main } from "../main.js";

const TOKEN = "vxg_jobs-test";
const AUDIO = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);

/** Fields a test sets on top of the basics. */
interface Extra {
  output?: MessageInitShape<typeof JobOutputSchema>;
  error?: MessageInitShape<typeof JobErrorSchema>;
}

function job(id: string, state: JobState, extra: Extra = {}): Job {
  return create(JobSchema, {
    id,
    state,
    spec: { kind: { case: "render", value: { segments: [{ text: "hi" }] } } },
    progress: { doneUnits: state === JobState.SUCCEEDED ? 2 : 1, totalUnits: 2 },
    createTime: { seconds: 1_700_000_000n, nanos: 0 },
    ...extra,
  });
}

const DONE = job("job_done", JobState.SUCCEEDED, {
  output: {
    contentType: "audio/wav",
    sizeBytes: 9n,
    durationMs: 1500n,
    digest: createHash("sha256").update(AUDIO).digest("hex"),
    itemCount: 2,
  },
});
const RUNNING = job("job_run", JobState.RUNNING);

let gateway: FakeGateway | undefined;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "voxgate-jobs-cli-"));
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

const known = new Map([
  [DONE.id, DONE],
  [RUNNING.id, RUNNING],
]);

function lookup(jobId: string): Job {
  const found = known.get(jobId);
  if (!found) throw new ConnectError(`job ${jobId} not found`, Code.NotFound);
  return found;
}

describe("voxgate jobs", () => {
  it("list prints every page as a table and passes --state", async () => {
    const requests: ListJobsRequest[] = [];
    const t = createTestIo({
      env: await start({
        async listJobs(request) {
          requests.push(request);
          return request.pageToken === ""
            ? { jobs: [DONE], nextPageToken: "p1" }
            : // As the gateway lists jobs: the kind without the spec.
              { jobs: [{ ...RUNNING, spec: undefined, kind: JobKind.RENDER }], nextPageToken: "" };
        },
      }),
    });
    expect(await main(["jobs", "list", "--state", "running"], t.io)).toBe(0);
    expect(t.stdout()).toBe(
      [
        "ID        KIND    STATE      PROGRESS  CREATED",
        "job_done  render  succeeded  2/2       2023-11-14T22:13:20.000Z",
        "job_run   render  running    1/2       2023-11-14T22:13:20.000Z",
        "",
      ].join("\n"),
    );
    expect(requests.map((r) => [r.state, r.pageToken])).toEqual([
      [JobState.RUNNING, ""],
      [JobState.RUNNING, "p1"],
    ]);
  });

  it("list stops a gateway that repeats a page token", async () => {
    const t = createTestIo({
      env: await start({ listJobs: async () => ({ jobs: [DONE], nextPageToken: "again" }) }),
    });
    expect(await main(["jobs", "list"], t.io)).toBe(1);
    expect(t.stderr()).toContain('repeated page token "again"');
  });

  it("get describes a job, or prints it as JSON", async () => {
    const env = await start({ getJob: async ({ jobId }) => ({ job: lookup(jobId) }) });
    const t = createTestIo({ env });
    expect(await main(["jobs", "get", "job_done"], t.io)).toBe(0);
    expect(t.stdout()).toContain("state:    succeeded");
    expect(t.stdout()).toContain("output:   audio/wav, 9 bytes, 1.50 s");
    const j = createTestIo({ env });
    expect(await main(["jobs", "get", "job_done", "--json"], j.io)).toBe(0);
    expect(JSON.parse(j.stdout())).toMatchObject({ id: "job_done", state: "JOB_STATE_SUCCEEDED" });
  });

  it("get of an unknown job fails with the gateway's NOT_FOUND message", async () => {
    const t = createTestIo({
      env: await start({ getJob: async ({ jobId }) => ({ job: lookup(jobId) }) }),
    });
    expect(await main(["jobs", "get", "job_nope"], t.io)).toBe(1);
    expect(t.stderr()).toBe("voxgate jobs: job job_nope not found\n");
  });

  it("watch follows progress to the end; exit 1 when the job failed", async () => {
    const failed = job("job_run", JobState.FAILED, {
      error: { code: Code.Unavailable, message: "no backend" },
    });
    const t = createTestIo({
      env: await start({
        async *watchJob() {
          yield { job: RUNNING };
          yield { job: failed };
          yield { job: RUNNING }; // never read: the watch ends at the first ended state
        },
      }),
    });
    expect(await main(["jobs", "watch", "job_run"], t.io)).toBe(1);
    expect(t.stderr()).toBe(
      "job_run running 1/2\njob_run failed 1/2\nvoxgate jobs: job job_run failed (Unavailable): no backend\n",
    );
    expect(t.stdout()).toContain("error:    Unavailable: no backend");
  });

  it("watch reconnects when the stream breaks and ends with the job", async () => {
    let calls = 0;
    const t = createTestIo({
      env: await start({
        async *watchJob() {
          calls++;
          yield { job: RUNNING };
          if (calls === 1) throw new ConnectError("gateway restarting", Code.Unavailable);
          yield { job: DONE };
        },
      }),
    });
    expect(await main(["jobs", "watch", "job_run"], t.io)).toBe(0);
    expect(calls).toBe(2);
    expect(t.stdout()).toContain("state:    succeeded");
  });

  it("cancel prints the job's state after cancelling", async () => {
    const cancelled: string[] = [];
    const t = createTestIo({
      env: await start({
        async cancelJob({ jobId }) {
          cancelled.push(jobId);
          return { job: job(jobId, JobState.CANCELLED) };
        },
      }),
    });
    expect(await main(["jobs", "cancel", "job_run"], t.io)).toBe(0);
    expect(cancelled).toEqual(["job_run"]);
    expect(t.stderr()).toBe("job job_run: cancelled\n");
  });

  it("output downloads a finished job's audio to a file", async () => {
    const t = createTestIo({
      env: await start({
        getJob: async ({ jobId }) => ({ job: lookup(jobId) }),
        async *getJobOutput() {
          yield { contentType: "audio/wav", data: AUDIO.subarray(0, 4) };
          yield { data: AUDIO.subarray(4) };
        },
      }),
    });
    const out = join(dir, "o.wav");
    expect(await main(["jobs", "output", "job_done", "-o", out], t.io)).toBe(0);
    expect(new Uint8Array(await readFile(out))).toEqual(AUDIO);
    expect(t.stderr()).toBe(`wrote ${out}: 9 bytes (audio/wav)\n`);
  });

  it("output of an unfinished job fails without downloading or writing", async () => {
    let downloads = 0;
    const t = createTestIo({
      env: await start({
        getJob: async ({ jobId }) => ({ job: lookup(jobId) }),
        async *getJobOutput() {
          downloads++;
          yield { data: AUDIO };
        },
      }),
    });
    expect(await main(["jobs", "output", "job_run", "-o", join(dir, "o.wav")], t.io)).toBe(1);
    expect(t.stderr()).toBe("voxgate jobs: job job_run is running, not finished\n");
    expect(downloads).toBe(0);
    expect(await readdir(dir)).toEqual([]);
  });

  it.each([
    [["jobs"], /give a subcommand/],
    [["jobs", "frobnicate"], /unknown subcommand "frobnicate"/],
    [["jobs", "get"], /give the job id/],
    [["jobs", "output", "job_done"], /pass -o FILE/],
    [["jobs", "list", "--state", "sleeping"], /--state/],
    [["jobs", "watch", "job a"], /is not a job id/],
  ])("%j is a usage error (exit 2) that calls nothing", async (args, message) => {
    const t = createTestIo({ env: await start({}) });
    expect(await main(args, t.io)).toBe(2);
    expect(t.stderr()).toMatch(message);
    expect(gateway?.calls).toEqual([]);
  });
});
