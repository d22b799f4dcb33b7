import { randomUUID } from "node:crypto";
import {
  type CallOptions,
  type Client,
  Code,
  ConnectError,
  createContextValues,
} from "@connectrpc/connect";
import type { Logger } from "pino";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { type JobService, JobState } from "../../gen/voxgate/v1/job_pb.js";
import { kCallContext } from "../gateway/call-context.js";
import type { BlobStore } from "../object-store/blob-store.js";
import { isSfmlParseError, parseSfml } from "../sfml/index.js";
import type { ClipVoices } from "./clip-voices.js";
import { type CloudClient, CloudError, type CloudJobUpdate } from "./cloud-client.js";
import { STORYFORGE_WORKER_PRINCIPAL } from "./storyforge-frontend.js";
import type { CloudJobRow, WorkerStore } from "./worker-store.js";

/** Options of {@link createCloudWorker}. */
export interface CloudWorkerOptions {
  /** Cloud's job API. */
  cloud: CloudClient;
  /** The worker rows (shared by every gateway on the database). */
  store: WorkerStore;
  /** JobService in process: the render jobs. */
  jobs: Client<typeof JobService>;
  /** Resolves Cloud voice refs (clip URLs are cloned on the gateway). */
  clipVoices: ClipVoices;
  /** Cloud's bucket, where the MP3 goes. */
  bucket: BlobStore;
  /** Public base of that bucket (makes `mp3_url`). */
  publicBase: string;
  /** Key prefix of the MP3s. */
  outputPrefix: string;
  /** Claim and progress interval, in ms. */
  pollMs: number;
  /** Lease of a row between gateways, in ms. */
  leaseMs: number;
  /** Most Cloud jobs this gateway drives at once. @default 2 */
  maxActive?: number;
  /** Root logger. */
  log: Logger;
}

/** The Cloud job worker: claims produce_audio jobs, renders them, reports to Cloud. */
export interface CloudWorker {
  /** Starts polling. */
  start(): void;
  /** Cancels the render of a Cloud job (Cloud's `/v1/jobs/abort`); resolves with 1 or 0. */
  abort(cloudJobId: string): Promise<number>;
  /** Stops polling and waits for the current pass. Idempotent. */
  close(): Promise<void>;
}

/**
 * Creates the worker. Each pass (every `pollMs`, never overlapping) first renews this gateway's
 * leases and takes over rows whose lease expired (a gateway killed mid-job), then drives each
 * held row: a claimed row gets its SFML and voices from Cloud and a durable voxgate render job
 * (request id `storyforge-<cloud job id>`, so a retried set-up finds the same job); a rendering row
 * reports progress to Cloud when the render's done count grew past what was reported (kept in
 * the row, so reports only grow across restarts), and once the render succeeded uploads the MP3
 * to `<outputPrefix><cloud job id>.mp3` and reports `mp3_url` and `completed`. Only then, if this
 * gateway still holds the row, is it marked done; the row's lease is what keeps a second gateway
 * from reporting it too; the leases are renewed every third of `leaseMs` while a pass runs, and
 * checked again right before the upload. Then, with room for more, it claims one job from Cloud.
 */
export function createCloudWorker(options: CloudWorkerOptions): CloudWorker {
  const { cloud, store, jobs, log: rootLog } = options;
  const log = rootLog.child({ component: "storyforge-worker" });
  const owner = `gw-${randomUUID()}`;
  const maxActive = options.maxActive ?? 2;
  const stop = new AbortController();
  const base = options.publicBase.endsWith("/") ? options.publicBase : `${options.publicBase}/`;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<void> = Promise.resolve();

  const callOf = (suffix: string): CallOptions => ({
    signal: stop.signal,
    timeoutMs: 120_000,
    contextValues: createContextValues().set(kCallContext, {
      requestId: `storyforge.${suffix}`,
      principal: STORYFORGE_WORKER_PRINCIPAL,
      log,
    }),
  });

  /** Reports a failed job to Cloud and closes the row. */
  async function fail(row: CloudJobRow, message: string): Promise<void> {
    await cloud.update(
      row.cloudJobId,
      { state: "failed", error_text: `error: ${message}`.slice(0, 2000), finished_at: now() },
      stop.signal,
    );
    await cloud.event(row.cloudJobId, `voxgate: failed: ${message}`, stop.signal).catch(() => {});
    await store.finish(row.cloudJobId, owner, "failed", "");
    log.warn({ cloudJobId: row.cloudJobId, error: message }, "StoryForge job failed");
  }

  /** Claimed → rendering: SFML, voices, render job. */
  async function setUp(row: CloudJobRow): Promise<void> {
    let sfml: string;
    let voiceList: Awaited<ReturnType<CloudClient["voices"]>>;
    try {
      sfml = await cloud.sfml(row.storyId, stop.signal);
      voiceList = await cloud.voices(stop.signal);
    } catch (err) {
      if (err instanceof CloudError && err.permanent) return fail(row, err.message);
      throw err;
    }
    let script: ReturnType<typeof parseSfml>["script"];
    try {
      script = parseSfml(sfml).script;
    } catch (err) {
      if (isSfmlParseError(err)) return fail(row, `sfml_invalid: ${err.message}`);
      throw err;
    }
    const byId = new Map(voiceList.map((v) => [v.id, v]));
    const cast: Record<string, { voice: string; engine: string }> = {};
    for (const member of script.cast) {
      const voice = byId.get(member.voiceId);
      if (!voice)
        return fail(
          row,
          `unknown_voice: ${member.voiceId} (cast ${member.name}) is not in /api/voices`,
        );
      try {
        cast[member.name] = {
          voice: await options.clipVoices.resolve(
            voice.voiceRef,
            voice.engine,
            voice.displayName,
            callOf(`${row.cloudJobId}.voice`),
          ),
          engine: voice.engine,
        };
      } catch (err) {
        return fail(row, `voice_failed: ${member.voiceId}: ${(err as Error).message}`);
      }
    }
    let created: Awaited<ReturnType<typeof jobs.createJob>>;
    try {
      created = await jobs.createJob(
        {
          requestId: `storyforge-${row.cloudJobId}`.slice(0, 128),
          labels: { "storyforge.job_id": row.cloudJobId.slice(0, 256) },
          spec: { kind: { case: "render", value: { sfml, cast, encoding: AudioEncoding.MP3 } } },
        },
        callOf(`${row.cloudJobId}.create`),
      );
    } catch (err) {
      const error = ConnectError.from(err);
      if (error.code === Code.InvalidArgument || error.code === Code.FailedPrecondition) {
        return fail(row, `render_refused: ${error.rawMessage}`);
      }
      throw err;
    }
    const job = created.job;
    if (!job) throw new Error("CreateJob answered without a job");
    const total = job.spec?.kind.case === "render" ? job.spec.kind.value.segments.length : 0;
    if (!(await store.setRender(row.cloudJobId, owner, job.id, total))) return;
    await cloud.update(
      row.cloudJobId,
      { state: "running", total_segments: total, segments_done: 0 },
      stop.signal,
    );
    await cloud.event(
      row.cloudJobId,
      `voxgate: rendering ${total} segments as job ${job.id}`,
      stop.signal,
    );
    log.info({ cloudJobId: row.cloudJobId, jobId: job.id, total }, "StoryForge job rendering");
  }

  /** Rendering: progress, then upload and completion. */
  async function follow(row: CloudJobRow): Promise<void> {
    const { job } = await jobs.getJob({ jobId: row.voxgateJobId }, callOf(`${row.cloudJobId}.get`));
    if (!job) return;
    const total = job.progress?.totalUnits || row.totalSegments;
    const done = Math.min(job.progress?.doneUnits ?? 0, total);
    if (done > row.segmentsReported) {
      const update: CloudJobUpdate = { total_segments: total, segments_done: done };
      await cloud.update(row.cloudJobId, update, stop.signal);
      await cloud.event(
        row.cloudJobId,
        `voxgate: ${done} of ${total} segments rendered`,
        stop.signal,
      );
      await store.setReported(row.cloudJobId, owner, done);
    }
    switch (job.state) {
      case JobState.SUCCEEDED: {
        // Upload and completion cannot be taken back: only while this gateway still holds the
        // row (its lease may have lapsed while this process stalled; then the other one reports).
        if (!(await store.renew(owner, options.leaseMs)).has(row.cloudJobId)) {
          log.warn({ cloudJobId: row.cloudJobId }, "StoryForge job lease lost before upload");
          return;
        }
        const key = `${options.outputPrefix}${safeKey(row.cloudJobId)}.mp3`;
        const parts: Uint8Array[] = [];
        for await (const body of jobs.getJobOutput(
          { jobId: job.id },
          callOf(`${row.cloudJobId}.output`),
        )) {
          parts.push(body.data);
        }
        const mp3 = Buffer.concat(parts);
        await options.bucket.put(key, mp3, { contentType: "audio/mpeg", signal: stop.signal });
        const mp3Url = `${base}${key}`;
        log.info(
          { cloudJobId: row.cloudJobId, key, bytes: mp3.byteLength },
          "StoryForge output uploaded",
        );
        await cloud.update(
          row.cloudJobId,
          {
            state: "completed",
            mp3_url: mp3Url,
            total_segments: total,
            segments_done: total,
            finished_at: now(),
          },
          stop.signal,
        );
        await store.finish(row.cloudJobId, owner, "completed", mp3Url);
        log.info({ cloudJobId: row.cloudJobId, mp3Url }, "StoryForge job completed");
        await cloud
          .event(
            row.cloudJobId,
            `voxgate: completed, ${mp3.byteLength} bytes at ${mp3Url}`,
            stop.signal,
          )
          .catch(() => {});
        return;
      }
      case JobState.FAILED:
        return fail(row, `${Code[job.error?.code ?? Code.Unknown]}: ${job.error?.message ?? ""}`);
      case JobState.CANCELLED:
        await cloud.update(row.cloudJobId, { state: "aborted", finished_at: now() }, stop.signal);
        await store.finish(row.cloudJobId, owner, "aborted", "");
        log.info({ cloudJobId: row.cloudJobId }, "StoryForge job aborted");
        return;
      default:
        return;
    }
  }

  async function runPass(): Promise<void> {
    const held = await store.acquire(owner, options.leaseMs);
    // A pass can outlast a lease (voice cloning, a long upload): keep renewing while it runs.
    const heartbeat = setInterval(
      () => {
        store.renew(owner, options.leaseMs).catch((err: unknown) => {
          log.warn({ err }, "StoryForge lease renewal failed");
        });
      },
      Math.max(50, Math.floor(options.leaseMs / 3)),
    );
    try {
      await drive(held);
    } finally {
      clearInterval(heartbeat);
    }
  }

  async function drive(held: CloudJobRow[]): Promise<void> {
    for (const row of held) {
      if (stop.signal.aborted) return;
      try {
        if (row.state === "claimed") await setUp(row);
        else if (row.state === "rendering") await follow(row);
      } catch (err) {
        if (stop.signal.aborted) return;
        log.warn(
          { err, cloudJobId: row.cloudJobId },
          "StoryForge job pass failed; retrying next pass",
        );
      }
    }
    if (held.length >= maxActive || stop.signal.aborted) return;
    const job = await cloud.claim(stop.signal);
    if (!job) return;
    const storyId = typeof job.meta.story_id === "string" ? job.meta.story_id : "";
    const row = await store.insert(
      { cloudJobId: job.id, storyId, title: job.title },
      owner,
      options.leaseMs,
    );
    if (!row) return;
    log.info({ cloudJobId: job.id, storyId }, "StoryForge job claimed");
    await cloud.event(job.id, "voxgate: claimed", stop.signal).catch(() => {});
    if (!storyId) return fail(row, "missing story_id in meta_json");
    await setUp(row);
  }

  const schedule = () => {
    if (stop.signal.aborted) return;
    timer = setTimeout(() => {
      pass = runPass()
        .catch((err: unknown) => {
          if (!stop.signal.aborted) log.warn({ err }, "StoryForge worker pass failed");
        })
        .finally(schedule);
    }, options.pollMs);
  };

  let closing: Promise<void> | undefined;
  return {
    start() {
      log.info({ owner, pollMs: options.pollMs }, "StoryForge worker started");
      schedule();
    },
    async abort(cloudJobId) {
      const row = await store.get(cloudJobId);
      if (!row?.voxgateJobId || row.state === "done") return 0;
      await jobs.cancelJob({ jobId: row.voxgateJobId }, callOf(`${cloudJobId}.cancel`));
      return 1;
    },
    close() {
      closing ??= (async () => {
        stop.abort();
        if (timer) clearTimeout(timer);
        await pass;
      })();
      return closing;
    },
  };
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}

/** A Cloud job id as an object key segment (Cloud's ids are `produce_<unix>_<story id>`). */
function safeKey(id: string): string {
  const cleaned = id.replace(/[^A-Za-z0-9._=-]/g, "_").replace(/^[^A-Za-z0-9]+/, "");
  return cleaned || "job";
}
