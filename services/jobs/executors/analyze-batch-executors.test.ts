import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  createServiceImplSpec,
  type ServiceImpl,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AnalysisKind } from "../../../gen/voxgate/v1/analysis_pb.js";
import { AudioEncoding } from "../../../gen/voxgate/v1/audio_pb.js";
import { type Job, JobSchema, type JobSpec } from "../../../gen/voxgate/v1/job_pb.js";
import { TtsService } from "../../../gen/voxgate/v1/tts_pb.js";
import { VoiceService } from "../../../gen/voxgate/v1/voice_pb.js";
import { settingDefaults } from "../../config/settings.js";
import { kCallContext } from "../../gateway/call-context.js";
import { gatewaySettings } from "../../gateway/gateway-settings.js";
import { createInProcessTransport } from "../../gateway/in-process-transport.js";
import type { BlobStore } from "../../object-store/blob-store.js";
import { createFsBlobStore } from "../../object-store/fs-blob-store.js";
import type { JobContext } from "../job-executor.js";
import { createJobExecutors, renderLimitsFromSettings } from "./index.js";

let root: string;
let blobs: BlobStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "voxgate-executors-"));
  blobs = createFsBlobStore({ rootDir: root });
});

afterEach(async () => {
  await blobs.close();
  await rm(root, { recursive: true, force: true });
});

function setup(services: ServiceImplSpec[]) {
  const transport = createInProcessTransport({ services, interceptors: [] });
  const executors = createJobExecutors({
    tts: createClient(TtsService, transport),
    voices: createClient(VoiceService, transport),
    limits: { ...renderLimitsFromSettings(settingDefaults(gatewaySettings)), maxBatchItems: 3 },
  });
  const byKind = (kind: string) => {
    const executor = executors.find((e) => e.kind === kind);
    if (!executor) throw new Error(`no ${kind} executor`);
    return executor;
  };
  return { byKind, kinds: executors.map((e) => e.kind) };
}

function contextFor() {
  const progress: number[] = [];
  const context: JobContext = {
    signal: new AbortController().signal,
    log: pino({ level: "silent" }),
    blobs,
    keyPrefix: "jobs/x1/",
    owner: { name: "owner-a", tenant: "owner-a", scopes: new Set(["jobs"]) },
    async reportProgress(done) {
      progress.push(done);
    },
  };
  return { context, progress };
}

function job(kind: JobSpec["kind"]): Job {
  return create(JobSchema, { id: "job_x1", spec: { kind } });
}

describe("createJobExecutors", () => {
  it("has one executor per job kind", () => {
    expect(setup([]).kinds.sort()).toEqual(["analyzeVoice", "batch", "render"]);
  });
});

describe("analyze_voice executor", () => {
  it("puts VoiceService.AnalyzeVoice's analysis in the output, called as the owner", async () => {
    const seen: Array<[string, string | undefined, AnalysisKind[]]> = [];
    const voices: Partial<ServiceImpl<typeof VoiceService>> = {
      async analyzeVoice(request, context) {
        seen.push([
          request.voiceId,
          context.values.get(kCallContext)?.principal?.name,
          request.kinds,
        ]);
        return {
          voice: { id: request.voiceId, analysis: { durationMs: 1234n, medianF0Hz: 210.5 } },
        };
      },
    };
    const { byKind } = setup([
      createServiceImplSpec<typeof VoiceService>(
        VoiceService,
        voices as ServiceImpl<typeof VoiceService>,
      ),
    ]);
    const { context, progress } = contextFor();
    const result = await byKind("analyzeVoice").run(
      job({
        case: "analyzeVoice",
        value: { voiceId: "v_1", kinds: [AnalysisKind.PITCH] } as never,
      }),
      context,
    );
    expect(seen).toEqual([["v_1", "owner-a", [AnalysisKind.PITCH]]]);
    expect(result.output.analysis).toMatchObject({ durationMs: 1234n, medianF0Hz: 210.5 });
    expect(result.outputKey).toBeUndefined();
    expect(progress).toEqual([0, 1]);
  });

  it("passes VoiceService errors through with their code", async () => {
    const voices: Partial<ServiceImpl<typeof VoiceService>> = {
      async analyzeVoice() {
        throw new ConnectError("voice v_9 not found", Code.NotFound);
      },
    };
    const { byKind } = setup([
      createServiceImplSpec<typeof VoiceService>(
        VoiceService,
        voices as ServiceImpl<typeof VoiceService>,
      ),
    ]);
    await expect(
      byKind("analyzeVoice").run(
        job({ case: "analyzeVoice", value: { voiceId: "v_9" } as never }),
        contextFor().context,
      ),
    ).rejects.toMatchObject({ code: Code.NotFound });
  });
});

describe("batch executor", () => {
  function fakeTts(calls: string[]): ServiceImplSpec {
    const impl: Partial<ServiceImpl<typeof TtsService>> = {
      async synthesize(request) {
        calls.push(request.text);
        if (request.text === "bad") throw new ConnectError("backend down", Code.Unavailable);
        return {
          contentType: request.encoding === AudioEncoding.MP3 ? "audio/mpeg" : "audio/wav",
          data: new TextEncoder().encode(`audio of ${request.text}`),
        };
      },
    };
    return createServiceImplSpec<typeof TtsService>(
      TtsService,
      impl as ServiceImpl<typeof TtsService>,
    );
  }

  it("stores each item under the job's prefix and skips stored items on a re-run", async () => {
    const calls: string[] = [];
    const { byKind } = setup([fakeTts(calls)]);
    const items = [
      { text: "one" },
      { text: "bad", encoding: AudioEncoding.MP3 },
      { text: "three", encoding: AudioEncoding.MP3 },
    ];
    const batch = job({ case: "batch", value: { items } as never });
    await expect(byKind("batch").run(batch, contextFor().context)).rejects.toMatchObject({
      code: Code.Unavailable,
      rawMessage: "item 2 of 3: backend down",
    });
    const stored = (await blobs.list("jobs/x1/items/")).items.map((i) => i.key);
    expect(stored).not.toContain("jobs/x1/items/000001.mp3");
    calls.length = 0;
    items[1] = { text: "two", encoding: AudioEncoding.MP3 };
    const result = await byKind("batch").run(
      job({ case: "batch", value: { items } as never }),
      contextFor().context,
    );
    // Exactly the items without a stored object were synthesized again.
    const texts = ["one", "two", "three"];
    const extensions = ["wav", "mp3", "mp3"];
    expect(calls.sort()).toEqual(
      texts.filter((_, i) => !stored.includes(`jobs/x1/items/00000${i}.${extensions[i]}`)).sort(),
    );
    expect(calls).toContain("two");
    const keys = (await blobs.list("jobs/x1/")).items.map((i) => i.key);
    expect(keys).toEqual([
      "jobs/x1/items/000000.wav",
      "jobs/x1/items/000001.mp3",
      "jobs/x1/items/000002.mp3",
    ]);
    expect(result.output).toEqual({
      itemCount: 3,
      sizeBytes: BigInt("audio of one".length + "audio of two".length + "audio of three".length),
    });
  });

  it("refuses more items than VOXGATE_MAX_BATCH_ITEMS with INVALID_ARGUMENT, calling nothing", async () => {
    const calls: string[] = [];
    const { byKind } = setup([fakeTts(calls)]);
    const batch = job({
      case: "batch",
      value: { items: [{ text: "a" }, { text: "b" }, { text: "c" }, { text: "d" }] } as never,
    });
    await expect(byKind("batch").run(batch, contextFor().context)).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: expect.stringContaining("VOXGATE_MAX_BATCH_ITEMS"),
    });
    expect(calls).toEqual([]);
    expect((await blobs.list("jobs/")).items).toEqual([]);
  });
});
