export { type RetryDelayOptions, retryDelayMs } from "./job-backoff.js";
export {
  isJobCancelledError,
  isLeaseLostError,
  isRunnerStoppingError,
  JobCancelledError,
  LeaseLostError,
  RunnerStoppingError,
} from "./job-errors.js";
export {
  createJobEvents,
  type JobEventListener,
  type JobEvents,
  type JobEventType,
} from "./job-events.js";
export type { JobContext, JobExecutor, JobResult } from "./job-executor.js";
export {
  createJobHandler,
  type JobHandlerLimits,
  type JobHandlerOptions,
} from "./job-handler.js";
export { isJobId, JOB_ID_PATTERN, jobKeyPrefix, newJobId } from "./job-ids.js";
export { jobMigrations } from "./job-migrations.js";
export {
  changeFromEvent,
  isTerminal,
  type JobChange,
  type JobRow,
  type JobStateName,
  jobFromRow,
  jobStateOf,
  stateNameOf,
  TERMINAL_STATES,
} from "./job-row.js";
export {
  createJobRunner,
  type JobRunner,
  type JobRunnerLimits,
  type JobRunnerOptions,
  type JobRunnerState,
  jobRunnerLimitsFromSettings,
  newRunnerId,
} from "./job-runner.js";
export { jobSettings } from "./job-settings.js";
export { checkCreateJobRequest, type JobSpecLimits } from "./job-spec.js";
export {
  createJobStore,
  type JobEventRow,
  type JobLease,
  type JobStore,
  type JobStoreOptions,
  type LeaseStatus,
  type NewJob,
} from "./job-store.js";
export {
  createJobSystem,
  defaultJobSettings,
  type JobSettingValues,
  type JobSystem,
  type JobSystemOptions,
  pickJobSettings,
} from "./job-system.js";
export {
  checkWebhookUrl,
  type HostResolver,
  isWebhookUrlError,
  nonPublicRange,
  resolveWebhookHost,
  type WebhookAddress,
  type WebhookPolicy,
  WebhookUrlError,
} from "./webhook-allowlist.js";
export { loadWebhookSecret, type WebhookSecretOptions } from "./webhook-secret.js";
export {
  createWebhookSender,
  type WebhookSender,
  type WebhookSenderOptions,
} from "./webhook-sender.js";
export {
  signWebhook,
  type VerifyWebhookOptions,
  verifyWebhookSignature,
  WEBHOOK_SIGNATURE_HEADER,
} from "./webhook-signature.js";
export {
  createWebhookStore,
  type WebhookDelivery,
  type WebhookStore,
} from "./webhook-store.js";
