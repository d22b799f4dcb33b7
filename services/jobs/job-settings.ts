import { z } from "zod";
import { boolSetting, intSetting, setting } from "../config/settings.js";

/** Comma-separated host names: trimmed, lowercased, empty entries dropped. */
const hostListSetting: z.ZodType<string[]> = z.union([
  z.array(z.string()),
  z.string().transform((v) =>
    v
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h.length > 0),
  ),
]);

/**
 * Settings of durable jobs and webhooks, part of the gateway's settings table (README: Settings).
 * Every limit a job or webhook is held to is one of these.
 */
export const jobSettings = {
  jobConcurrency: setting({
    key: "jobConcurrency",
    flag: "job-concurrency",
    env: "VOXGATE_JOB_CONCURRENCY",
    description: "jobs this gateway runs at once (0 = this gateway runs no jobs, others do)",
    schema: intSetting(0, 1000),
    defaultValue: 2,
  }),
  jobLeaseMs: setting({
    key: "jobLeaseMs",
    flag: "job-lease-ms",
    env: "VOXGATE_JOB_LEASE_MS",
    description:
      "lease a runner holds on a job, in ms; a stopped gateway's jobs are re-run by another after it",
    schema: intSetting(500, 3_600_000),
    defaultValue: 30_000,
  }),
  jobHeartbeatMs: setting({
    key: "jobHeartbeatMs",
    flag: "job-heartbeat-ms",
    env: "VOXGATE_JOB_HEARTBEAT_MS",
    description: "interval of lease renewals of running jobs, in ms (keep well under the lease)",
    schema: intSetting(50, 3_600_000),
    defaultValue: 10_000,
  }),
  jobPollMs: setting({
    key: "jobPollMs",
    flag: "job-poll-ms",
    env: "VOXGATE_JOB_POLL_MS",
    description: "interval an idle runner looks for queued jobs made by other gateways, in ms",
    schema: intSetting(10, 600_000),
    defaultValue: 1000,
  }),
  jobCancelPollMs: setting({
    key: "jobCancelPollMs",
    flag: "job-cancel-poll-ms",
    env: "VOXGATE_JOB_CANCEL_POLL_MS",
    description:
      "interval a runner checks its jobs for cancellation on another gateway, in ms (local cancels are instant)",
    schema: intSetting(10, 60_000),
    defaultValue: 250,
  }),
  jobWatchPollMs: setting({
    key: "jobWatchPollMs",
    flag: "job-watch-poll-ms",
    env: "VOXGATE_JOB_WATCH_POLL_MS",
    description:
      "interval WatchJob looks for changes made on another gateway, in ms (local changes are instant)",
    schema: intSetting(10, 60_000),
    defaultValue: 250,
  }),
  jobMaxAttempts: setting({
    key: "jobMaxAttempts",
    flag: "job-max-attempts",
    env: "VOXGATE_JOB_MAX_ATTEMPTS",
    description: "runs of a job (first run and retries) before it fails",
    schema: intSetting(1, 100),
    defaultValue: 3,
  }),
  jobRetryBaseMs: setting({
    key: "jobRetryBaseMs",
    flag: "job-retry-base-ms",
    env: "VOXGATE_JOB_RETRY_BASE_MS",
    description: "backoff before a failed job's second run, in ms; doubles per run, with jitter",
    schema: intSetting(0, 3_600_000),
    defaultValue: 1000,
  }),
  jobRetryMaxMs: setting({
    key: "jobRetryMaxMs",
    flag: "job-retry-max-ms",
    env: "VOXGATE_JOB_RETRY_MAX_MS",
    description: "longest backoff between runs of a job, in ms",
    schema: intSetting(0, 24 * 3_600_000),
    defaultValue: 300_000,
  }),
  jobMaxUnavailableRetries: setting({
    key: "jobMaxUnavailableRetries",
    flag: "job-max-unavailable-retries",
    env: "VOXGATE_JOB_MAX_UNAVAILABLE_RETRIES",
    description: "runs ending UNAVAILABLE (no backend up yet) retried without using up an attempt",
    schema: intSetting(0, 10_000),
    defaultValue: 30,
  }),
  jobUnavailableRetryMaxMs: setting({
    key: "jobUnavailableRetryMaxMs",
    flag: "job-unavailable-retry-max-ms",
    env: "VOXGATE_JOB_UNAVAILABLE_RETRY_MAX_MS",
    description: "longest backoff between runs that found no backend, in ms",
    schema: intSetting(0, 3_600_000),
    defaultValue: 10_000,
  }),
  maxJobsPerList: setting({
    key: "maxJobsPerList",
    flag: "max-jobs-per-list",
    env: "VOXGATE_MAX_JOBS_PER_LIST",
    description: "most jobs one ListJobs page returns",
    schema: intSetting(1, 500),
    defaultValue: 500,
  }),
  maxActiveJobsPerOwner: setting({
    key: "maxActiveJobsPerOwner",
    flag: "max-active-jobs-per-owner",
    env: "VOXGATE_MAX_ACTIVE_JOBS_PER_OWNER",
    description: "queued plus running jobs one token may have; CreateJob beyond it gets 429",
    schema: intSetting(1, 10_000_000),
    defaultValue: 1000,
  }),
  maxRenderSegments: setting({
    key: "maxRenderSegments",
    flag: "max-render-segments",
    env: "VOXGATE_MAX_RENDER_SEGMENTS",
    description: "most segments in one render job's script",
    schema: intSetting(1, 100_000),
    defaultValue: 1000,
  }),
  maxBatchItems: setting({
    key: "maxBatchItems",
    flag: "max-batch-items",
    env: "VOXGATE_MAX_BATCH_ITEMS",
    description: "most items in one batch job",
    schema: intSetting(1, 100_000),
    defaultValue: 1000,
  }),
  maxJobPauseMs: setting({
    key: "maxJobPauseMs",
    flag: "max-job-pause-ms",
    env: "VOXGATE_MAX_JOB_PAUSE_MS",
    description: "longest pause a render segment may ask for, in ms",
    schema: intSetting(0, 3_600_000),
    defaultValue: 60_000,
  }),
  maxJobLabels: setting({
    key: "maxJobLabels",
    flag: "max-job-labels",
    env: "VOXGATE_MAX_JOB_LABELS",
    description: "most labels on one job (keys [a-z0-9_.-] up to 63 characters, values up to 256)",
    schema: intSetting(0, 1000),
    defaultValue: 32,
  }),
  maxJobWatchers: setting({
    key: "maxJobWatchers",
    flag: "max-job-watchers",
    env: "VOXGATE_MAX_JOB_WATCHERS",
    description: "WatchJob streams open at once on this gateway; more get 429",
    schema: intSetting(1, 1_000_000),
    defaultValue: 1000,
  }),
  webhookAllowedHosts: setting({
    key: "webhookAllowedHosts",
    flag: "webhook-allowed-hosts",
    env: "VOXGATE_WEBHOOK_ALLOWED_HOSTS",
    description:
      "hosts job webhooks may call, comma-separated (`*.example.com` matches subdomains); empty = webhooks off",
    schema: hostListSetting,
    defaultValue: [] as string[],
  }),
  webhookAllowPrivate: setting({
    key: "webhookAllowPrivate",
    flag: "webhook-allow-private",
    env: "VOXGATE_WEBHOOK_ALLOW_PRIVATE",
    description:
      "let webhooks call private, loopback and link-local addresses (off: such hosts are refused even when allowed by name)",
    schema: boolSetting,
    defaultValue: false,
  }),
  webhookSecret: setting({
    key: "webhookSecret",
    flag: undefined,
    env: "VOXGATE_WEBHOOK_SECRET",
    description:
      "HMAC-SHA256 key of webhook signatures; unset = generated once and kept in <data dir>/webhook-secret",
    schema: z.string().min(16, { error: "must be at least 16 characters" }),
    defaultValue: "",
  }),
  webhookTimeoutMs: setting({
    key: "webhookTimeoutMs",
    flag: "webhook-timeout-ms",
    env: "VOXGATE_WEBHOOK_TIMEOUT_MS",
    description: "time a webhook receiver has to answer, in ms",
    schema: intSetting(100, 600_000),
    defaultValue: 10_000,
  }),
  webhookMaxAttempts: setting({
    key: "webhookMaxAttempts",
    flag: "webhook-max-attempts",
    env: "VOXGATE_WEBHOOK_MAX_ATTEMPTS",
    description: "calls of one webhook before it is given up (non-2xx answers and timeouts retry)",
    schema: intSetting(1, 100),
    defaultValue: 8,
  }),
  webhookRetryBaseMs: setting({
    key: "webhookRetryBaseMs",
    flag: "webhook-retry-base-ms",
    env: "VOXGATE_WEBHOOK_RETRY_BASE_MS",
    description:
      "backoff before a webhook's second call, in ms; doubles per call, with jitter, up to 1 h",
    schema: intSetting(0, 3_600_000),
    defaultValue: 1000,
  }),
  maxWebhookUrlChars: setting({
    key: "maxWebhookUrlChars",
    flag: "max-webhook-url-chars",
    env: "VOXGATE_MAX_WEBHOOK_URL_CHARS",
    description: "longest webhook URL, in characters",
    schema: intSetting(16, 65_536),
    defaultValue: 2048,
  }),
};
