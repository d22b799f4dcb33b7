import { create, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type JobService, JobSpecSchema } from "../../gen/voxgate/v1/job_pb.js";
import type { Principal } from "../auth/token-store.js";
import { kCallContext } from "../gateway/call-context.js";
import type { BlobStore } from "../object-store/blob-store.js";
import { isBlobNotFoundError } from "../object-store/blob-store.js";
import { decodePageToken, encodePageToken, pageSizeOf } from "../paging/page-token.js";
import type { JobEvents } from "./job-events.js";
import type { JobExecutor } from "./job-executor.js";
import { isJobId, newJobId } from "./job-ids.js";
import { changeFromEvent, isTerminal, type JobRow, jobFromRow, stateNameOf } from "./job-row.js";
import { checkCreateJobRequest, type JobSpecLimits } from "./job-spec.js";
import type { JobStore } from "./job-store.js";
import { expandSfmlRender } from "./sfml-render-spec.js";
import {
  checkWebhookUrl,
  type HostResolver,
  isWebhookUrlError,
  resolveWebhookHost,
  type WebhookPolicy,
} from "./webhook-allowlist.js";

/** Limits of JobService beyond the spec checks; each is a gateway setting. */
export interface JobHandlerLimits extends JobSpecLimits {
  /** Most jobs per ListJobs page (VOXGATE_MAX_JOBS_PER_LIST). */
  maxJobsPerList: number;
  /** Queued plus running jobs per token (VOXGATE_MAX_ACTIVE_JOBS_PER_OWNER). */
  maxActiveJobsPerOwner: number;
  /** Runs of a job before it fails (VOXGATE_JOB_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** Interval WatchJob polls for changes made elsewhere, in ms (VOXGATE_JOB_WATCH_POLL_MS). */
  watchPollMs: number;
  /** WatchJob streams open at once (VOXGATE_MAX_JOB_WATCHERS). */
  maxJobWatchers: number;
}

/** Options of {@link createJobHandler}. */
export interface JobHandlerOptions {
  /** The job store; opened on first use (the database opens lazily). */
  store(): Promise<JobStore>;
  /** Object store holding job outputs; opened on first use. */
  blobs(): Promise<BlobStore>;
  /** Local change fan-out (instant watch updates, instant local cancel). */
  events: JobEvents;
  /** Executors by kind: a kind without one is refused, and `check` vets specs. */
  executors: readonly JobExecutor[];
  /** Limits. */
  limits: JobHandlerLimits;
  /** Where webhooks may go. */
  webhooks: WebhookPolicy;
  /** Host resolver of the webhook check (tests). @default dns.lookup */
  resolveHost?: HostResolver;
  /** Called after a job was queued (the gateway starts its runner on first use). */
  onCreated?: () => void;
}

// Larger blob chunks are cut so one message stays far below every message limit.
const MAX_CHUNK_BYTES = 256 * 1024;
const EVENTS_PER_READ = 100;

function principalOf(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(kCallContext)?.principal;
  if (!principal) throw new ConnectError("a token is required", Code.Unauthenticated);
  return principal;
}

/**
 * Owner filter of a caller: admins see every job, others only their tenant's. Jobs are owned by
 * tenant, like cloned voices (a token's tenant defaults to its name).
 */
function ownerFilter(principal: Principal): string | undefined {
  return principal.scopes.has("admin") ? undefined : principal.tenant;
}

function checkJobId(id: string): void {
  if (!isJobId(id)) {
    throw new ConnectError("job_id must be an id CreateJob returned (job_…)", Code.InvalidArgument);
  }
}

function notFound(id: string): ConnectError {
  // The same answer for "no such job" and "not yours", so ids of others' jobs leak nothing.
  return new ConnectError(`job ${id} not found`, Code.NotFound);
}

/**
 * Creates the JobService implementation. A job is visible only to the token that created it and
 * to tokens with the `admin` scope; everyone else gets NOT_FOUND, never PERMISSION_DENIED.
 */
export function createJobHandler(options: JobHandlerOptions): ServiceImpl<typeof JobService> {
  const { limits, events } = options;
  const executors = new Map(options.executors.map((e) => [e.kind as string, e]));
  let watchers = 0;

  const load = async (id: string, principal: Principal): Promise<JobRow> => {
    checkJobId(id);
    const row = await (await options.store()).get(id, ownerFilter(principal));
    if (!row) throw notFound(id);
    return row;
  };

  return {
    async createJob(request, ctx) {
      const principal = principalOf(ctx);
      // An SFML script becomes its segments before any other check sees the spec.
      const sfmlWarnings = expandSfmlRender(request);
      const kind = checkCreateJobRequest(request, limits);
      const executor = executors.get(kind);
      if (!executor) {
        throw new ConnectError(`this gateway runs no ${kind} jobs`, Code.Unimplemented);
      }
      const spec = request.spec ?? create(JobSpecSchema);
      await executor.validate?.(spec);
      if (request.webhookUrl) {
        try {
          const url = checkWebhookUrl(request.webhookUrl, options.webhooks);
          await resolveWebhookHost(url, options.webhooks, options.resolveHost);
        } catch (err) {
          if (isWebhookUrlError(err)) throw new ConnectError(err.message, Code.InvalidArgument);
          throw err;
        }
      }
      const store = await options.store();
      if (request.requestId) {
        const existing = await store.getByRequestId(principal.tenant, request.requestId);
        if (existing) return { job: jobFromRow(existing) };
      }
      const active = await store.countActive(principal.tenant);
      if (active >= limits.maxActiveJobsPerOwner) {
        throw new ConnectError(
          `${active} jobs of this tenant are queued or running; the limit is ${limits.maxActiveJobsPerOwner} (VOXGATE_MAX_ACTIVE_JOBS_PER_OWNER)`,
          Code.ResourceExhausted,
        );
      }
      const { row, created } = await store.create({
        id: newJobId(),
        kind,
        spec: toJson(JobSpecSchema, spec),
        owner: principal.tenant,
        ownerScopes: [...principal.scopes],
        requestId: request.requestId,
        maxAttempts: limits.maxAttempts,
        webhookUrl: request.webhookUrl,
        labels: { ...request.labels },
      });
      if (created) {
        events.emit("created", row.id);
        options.onCreated?.();
        ctx.values
          .get(kCallContext)
          ?.log.info(
            { jobId: row.id, kind, ...(sfmlWarnings.length ? { sfmlWarnings } : {}) },
            "job queued",
          );
      }
      return { job: jobFromRow(row) };
    },

    async getJob(request, ctx) {
      return { job: jobFromRow(await load(request.jobId, principalOf(ctx))) };
    },

    async listJobs(request, ctx) {
      const principal = principalOf(ctx);
      const offset = decodePageToken(request.pageToken);
      const size = Math.min(pageSizeOf(request.pageSize), limits.maxJobsPerList);
      const rows = await (await options.store()).list({
        owner: ownerFilter(principal),
        state: stateNameOf(request.state),
        offset,
        limit: size + 1,
      });
      const page = rows.slice(0, size);
      return {
        // Lists leave the spec out (GetJob has it): a page of long scripts could be huge.
        jobs: page.map((row) => jobFromRow(row, { withSpec: false })),
        nextPageToken: rows.length > size ? encodePageToken(offset + size) : "",
      };
    },

    async *watchJob(request, ctx) {
      const principal = principalOf(ctx);
      checkJobId(request.jobId);
      if (watchers >= limits.maxJobWatchers) {
        throw new ConnectError(
          `${watchers} jobs are being watched on this gateway; the limit is ${limits.maxJobWatchers} (VOXGATE_MAX_JOB_WATCHERS)`,
          Code.ResourceExhausted,
        );
      }
      watchers++;
      try {
        const store = await options.store();
        const base = await load(request.jobId, principal);
        yield { job: jobFromRow(base) };
        if (isTerminal(base.state)) return;
        let seq = base.event_seq;
        let backlog = false;
        while (!ctx.signal.aborted) {
          if (!backlog) await events.waitForChange(base.id, limits.watchPollMs, ctx.signal);
          if (ctx.signal.aborted) return;
          const entries = await store.eventsAfter(base.id, seq, EVENTS_PER_READ);
          backlog = entries.length === EVENTS_PER_READ;
          for (const entry of entries) {
            seq = entry.seq;
            const change = changeFromEvent(entry.event);
            // The first update carried the spec; it never changes, so later ones leave it out.
            yield { job: jobFromRow({ ...base, ...change }, { withSpec: false }) };
            if (isTerminal(change.state)) return;
          }
        }
      } finally {
        watchers--;
      }
    },

    async cancelJob(request, ctx) {
      const principal = principalOf(ctx);
      checkJobId(request.jobId);
      const row = await (await options.store()).cancel(request.jobId, ownerFilter(principal));
      if (!row) throw notFound(request.jobId);
      // The runner of this gateway stops at once; another gateway's sees it within its cancel poll.
      events.emit("cancelled", row.id);
      return { job: jobFromRow(row) };
    },

    async *getJobOutput(request, ctx) {
      const row = await load(request.jobId, principalOf(ctx));
      if (row.state !== "SUCCEEDED") {
        throw new ConnectError(
          `job ${row.id} is ${row.state}; its output can be read once it has SUCCEEDED`,
          Code.FailedPrecondition,
        );
      }
      if (!row.output_key) {
        throw new ConnectError(
          `job ${row.id} made no audio file; its result is in Job.output`,
          Code.FailedPrecondition,
        );
      }
      const blobs = await options.blobs();
      const output = jobFromRow(row).output;
      let contentType = output?.contentType ?? "";
      let body: AsyncIterable<Uint8Array>;
      try {
        body = await blobs.get(row.output_key, { signal: ctx.signal });
        if (!contentType) contentType = (await blobs.stat(row.output_key))?.contentType ?? "";
      } catch (err) {
        if (isBlobNotFoundError(err)) {
          throw new ConnectError(
            `the output of job ${row.id} is missing from the object store`,
            Code.DataLoss,
          );
        }
        throw err;
      }
      let first = true;
      for await (const chunk of body) {
        for (let at = 0; at < chunk.length; at += MAX_CHUNK_BYTES) {
          const data = chunk.subarray(at, at + MAX_CHUNK_BYTES);
          yield first ? { contentType: contentType || "application/octet-stream", data } : { data };
          first = false;
        }
      }
      if (first)
        yield { contentType: contentType || "application/octet-stream", data: new Uint8Array() };
    },
  };
}
