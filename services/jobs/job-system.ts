import type { ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { JobService } from "../../gen/voxgate/v1/job_pb.js";
import { type SettingValues, settingDefaults } from "../config/settings.js";
import type { DatabaseProvider } from "../database/database-provider.js";
import type { BlobStore } from "../object-store/blob-store.js";
import { createJobEvents, type JobEvents } from "./job-events.js";
import type { JobExecutor } from "./job-executor.js";
import { createJobHandler } from "./job-handler.js";
import {
  createJobRunner,
  type JobRunner,
  jobRunnerLimitsFromSettings,
  newRunnerId,
} from "./job-runner.js";
import { jobSettings } from "./job-settings.js";
import { createJobStore, type JobStore } from "./job-store.js";
import type { HostResolver } from "./webhook-allowlist.js";
import { loadWebhookSecret } from "./webhook-secret.js";
import {
  createWebhookSender,
  type WebhookSender,
  type WebhookSenderOptions,
} from "./webhook-sender.js";
import { createWebhookStore } from "./webhook-store.js";

/** Resolved job and webhook settings (see `jobSettings`). */
export type JobSettingValues = SettingValues<typeof jobSettings>;

/** Defaults of every job setting, from the settings table. */
export const defaultJobSettings: JobSettingValues = settingDefaults(jobSettings);

/** Options of {@link createJobSystem}. */
export interface JobSystemOptions {
  /** The gateway's database; its migrations must include `jobMigrations`. */
  database: DatabaseProvider;
  /** Object store of job outputs and checkpoints. */
  blobs: BlobStore;
  /** Data directory (a generated webhook secret is kept there). */
  dataDir: string;
  /** Executors of the job kinds this gateway accepts and runs. */
  executors: readonly JobExecutor[];
  /** Longest text of a segment or batch item, in characters (VOXGATE_MAX_TEXT_CHARS). */
  maxTextChars: number;
  /** Job and webhook settings; missing keys take their defaults. */
  settings?: Partial<JobSettingValues>;
  /** Root logger. */
  log: Logger;
  /** Runner id. @default random per process */
  runnerId?: string;
  /** Host resolver of webhook checks (tests). @default dns.lookup */
  resolveHost?: HostResolver;
  /** Observes each webhook call's outcome (metrics). */
  onWebhookDelivery?: WebhookSenderOptions["onDelivery"];
}

/** Jobs in the database by kind and state, and how long runnable jobs have waited. */
export interface JobFigures {
  /** Jobs per kind and state (`QUEUED`, `RUNNING`, …). */
  counts: Array<{ kind: string; state: string; jobs: number }>;
  /** Per kind with runnable queued jobs: seconds the oldest has waited since it became due. */
  oldestQueuedSeconds: Array<{ kind: string; seconds: number }>;
}

/**
 * Durable jobs on one gateway: the JobService implementation, the runner that claims and runs
 * jobs from the shared table, and the webhook sender. Nothing touches the database until it is
 * needed: {@link JobSystem.start} resumes at once only when the database already holds state.
 */
export interface JobSystem {
  /** JobService, for the gateway's service list. */
  readonly handler: ServiceImpl<typeof JobService>;
  /** Local change fan-out. */
  readonly events: JobEvents;
  /** This gateway's runner id (written into leases). */
  readonly runnerId: string;
  /**
   * Starts runner and webhook sender now when the database already holds state (a restarted
   * gateway resumes its jobs, or re-runs a killed gateway's after their leases expire); otherwise
   * they start on first use.
   */
  start(): Promise<void>;
  /**
   * Jobs by kind and state from the shared table (every replica's), for metrics; undefined while
   * the database is not open (a scrape never opens it).
   */
  figures(): Promise<JobFigures | undefined>;
  /** Stops the runner (giving running jobs back) and the sender; idempotent. Call before the database closes. */
  close(): Promise<void>;
  /**
   * Winds the runner down for a restart (see `JobRunner.drain`): resolves once no job runs here,
   * each given back after the pieces it had started. Idempotent.
   */
  drain(): Promise<void>;
  /** Ids of the jobs this gateway runs now. */
  readonly runningJobIds: string[];
}

/** Creates the job system of a gateway. */
export function createJobSystem(options: JobSystemOptions): JobSystem {
  const settings: JobSettingValues = { ...defaultJobSettings, ...options.settings };
  const runnerId = options.runnerId ?? newRunnerId();
  const events = createJobEvents();
  const webhooks = {
    allowedHosts: settings.webhookAllowedHosts,
    allowPrivate: settings.webhookAllowPrivate,
    maxUrlChars: settings.maxWebhookUrlChars,
  };
  let runner: JobRunner | undefined;
  let sender: WebhookSender | undefined;
  let opening: Promise<JobStore> | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;

  const open = async (): Promise<JobStore> => {
    const db = await options.database.get();
    const store = createJobStore({ db, onChange: (id) => events.emit("changed", id) });
    if (closed) return store;
    if (settings.jobConcurrency > 0 && options.executors.length > 0) {
      runner = createJobRunner({
        store,
        executors: options.executors,
        blobs: options.blobs,
        // The runner and the sender name their own component: they get the root logger.
        log: options.log,
        events,
        runnerId,
        limits: jobRunnerLimitsFromSettings(settings),
      });
      runner.start();
    }
    if (webhooks.allowedHosts.length > 0) {
      const secret = await loadWebhookSecret({
        configured: settings.webhookSecret,
        dataDir: options.dataDir,
      });
      if (closed) return store;
      sender = createWebhookSender({
        deliveries: createWebhookStore(db),
        jobs: store,
        secret,
        policy: webhooks,
        log: options.log,
        senderId: runnerId,
        timeoutMs: settings.webhookTimeoutMs,
        maxAttempts: settings.webhookMaxAttempts,
        retryBaseMs: settings.webhookRetryBaseMs,
        pollMs: settings.jobPollMs,
        ...(options.resolveHost ? { resolve: options.resolveHost } : {}),
        ...(options.onWebhookDelivery ? { onDelivery: options.onWebhookDelivery } : {}),
      });
      sender.start();
    }
    return store;
  };
  const store = () => {
    if (closed) return Promise.reject(new Error("the job system is closed"));
    opening ??= open();
    return opening;
  };

  const handler = createJobHandler({
    store,
    blobs: async () => options.blobs,
    events,
    executors: options.executors,
    webhooks,
    ...(options.resolveHost ? { resolveHost: options.resolveHost } : {}),
    limits: {
      maxRenderSegments: settings.maxRenderSegments,
      maxBatchItems: settings.maxBatchItems,
      maxTextChars: options.maxTextChars,
      maxJobPauseMs: settings.maxJobPauseMs,
      maxJobLabels: settings.maxJobLabels,
      maxJobsPerList: settings.maxJobsPerList,
      maxActiveJobsPerOwner: settings.maxActiveJobsPerOwner,
      maxAttempts: settings.jobMaxAttempts,
      watchPollMs: settings.jobWatchPollMs,
      maxJobWatchers: settings.maxJobWatchers,
    },
  });

  return {
    handler,
    events,
    runnerId,
    async start() {
      if (options.database.existing) await store();
    },
    drain() {
      return runner?.drain() ?? Promise.resolve();
    },
    get runningJobIds() {
      return runner?.runningJobIds ?? [];
    },
    async figures() {
      if (options.database.state !== "open") return undefined;
      const db = await options.database.get();
      const [counts, waits] = await Promise.all([
        db.query<{ kind: string; state: string; jobs: number }>(
          "SELECT kind, state, count(*)::int4 AS jobs FROM jobs GROUP BY kind, state",
        ),
        db.query<{ kind: string; seconds: number }>(
          `SELECT kind, EXTRACT(EPOCH FROM now() - min(run_after))::float8 AS seconds
             FROM jobs WHERE state = 'QUEUED' AND run_after <= now() GROUP BY kind`,
        ),
      ]);
      return {
        counts: counts.rows.map((r) => ({ kind: r.kind, state: r.state, jobs: Number(r.jobs) })),
        oldestQueuedSeconds: waits.rows.map((r) => ({
          kind: r.kind,
          seconds: Math.max(0, Number(r.seconds)),
        })),
      };
    },
    close() {
      closing ??= (async () => {
        closed = true;
        await opening?.catch(() => undefined);
        await Promise.all([runner?.shutdown(), sender?.shutdown()]);
      })();
      return closing;
    },
  };
}

/** Picks the job settings out of a resolved settings object that holds them (the gateway's). */
export function pickJobSettings(values: JobSettingValues): JobSettingValues {
  return Object.fromEntries(
    Object.keys(jobSettings).map((name) => [name, values[name as keyof JobSettingValues]]),
  ) as JobSettingValues;
}
