/**
 * Gateway settings for job tests that kill a gateway mid-job: short leases, so a restarted (or
 * another) gateway takes the job over within seconds. A gateway may claim the job before its
 * agents have reconnected: those attempts fail with UNAVAILABLE and are retried, so allow enough
 * of them, at most 2 s apart.
 */
export const FAST_JOB_ENV = {
  VOXGATE_JOB_LEASE_MS: "2000",
  VOXGATE_JOB_HEARTBEAT_MS: "400",
  VOXGATE_JOB_POLL_MS: "200",
  VOXGATE_JOB_RETRY_BASE_MS: "300",
  VOXGATE_JOB_RETRY_MAX_MS: "2000",
  VOXGATE_JOB_MAX_ATTEMPTS: "60",
  VOXGATE_JOB_CANCEL_POLL_MS: "100",
};
