import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Job,
  JobKind,
  JobOutputSchema,
  JobSchema,
  JobSpecSchema,
  JobState,
} from "../../gen/voxgate/v1/job_pb.js";

/** A job's state as stored in SQL (the `JobState` name without its prefix). */
export type JobStateName = "QUEUED" | "RUNNING" | "SUCCEEDED" | "FAILED" | "CANCELLED";

/** States a job never leaves. */
export const TERMINAL_STATES: ReadonlySet<JobStateName> = new Set([
  "SUCCEEDED",
  "FAILED",
  "CANCELLED",
]);

/** One `jobs` row as both database adapters return it. */
export interface JobRow {
  id: string;
  kind: string;
  spec: JsonValue;
  state: JobStateName;
  owner: string;
  owner_scopes: string[];
  request_id: string;
  attempts: number;
  max_attempts: number;
  /** Runs that ended UNAVAILABLE (no backend up) and were given back without counting. */
  unavailable_retries: number;
  run_after: Date;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  progress_done: number;
  progress_total: number;
  progress_message: string;
  error_code: number;
  error_message: string;
  output: JsonValue | null;
  output_key: string | null;
  webhook_url: string;
  labels: Record<string, string>;
  cancel_requested: boolean;
  event_seq: number;
  created: Date;
  started: Date | null;
  ended: Date | null;
}

/** The fields of a row that change as a job runs; each `job_events` row holds one snapshot. */
export type JobChange = Pick<
  JobRow,
  | "state"
  | "attempts"
  | "progress_done"
  | "progress_total"
  | "progress_message"
  | "error_code"
  | "error_message"
  | "output"
  | "output_key"
  | "started"
  | "ended"
>;

/**
 * SQL expression building the {@link JobChange} snapshot of the row in scope (timestamps become
 * ISO strings in JSON; {@link changeFromEvent} turns them back into dates).
 */
export const CHANGE_SNAPSHOT_SQL = `jsonb_build_object(
  'state', state, 'attempts', attempts, 'progress_done', progress_done,
  'progress_total', progress_total, 'progress_message', progress_message,
  'error_code', error_code, 'error_message', error_message, 'output', output,
  'output_key', output_key, 'started', started, 'ended', ended)`;

/** Reads a `job_events.event` snapshot back into a {@link JobChange}. */
export function changeFromEvent(event: Record<string, unknown>): JobChange {
  const date = (v: unknown) => (typeof v === "string" ? new Date(v) : null);
  return {
    state: event.state as JobStateName,
    attempts: Number(event.attempts),
    progress_done: Number(event.progress_done),
    progress_total: Number(event.progress_total),
    progress_message: String(event.progress_message ?? ""),
    error_code: Number(event.error_code),
    error_message: String(event.error_message ?? ""),
    output: (event.output ?? null) as JsonValue | null,
    output_key: (event.output_key ?? null) as string | null,
    started: date(event.started),
    ended: date(event.ended),
  };
}

/** Returns whether a stored state is terminal. */
export function isTerminal(state: JobStateName): boolean {
  return TERMINAL_STATES.has(state);
}

/** Maps a stored state name to the API enum. */
export function jobStateOf(name: JobStateName): JobState {
  return JobState[name];
}

/** Maps an API state to the stored name; undefined for `JOB_STATE_UNSPECIFIED`. */
export function stateNameOf(state: JobState): JobStateName | undefined {
  switch (state) {
    case JobState.QUEUED:
      return "QUEUED";
    case JobState.RUNNING:
      return "RUNNING";
    case JobState.SUCCEEDED:
      return "SUCCEEDED";
    case JobState.FAILED:
      return "FAILED";
    case JobState.CANCELLED:
      return "CANCELLED";
    default:
      return undefined;
  }
}

/** The API kind of a stored kind name (`JobSpec.kind.case`); UNSPECIFIED for one it does not know. */
export function jobKindOf(kind: string): JobKind {
  switch (kind) {
    case "render":
      return JobKind.RENDER;
    case "analyzeVoice":
      return JobKind.ANALYZE_VOICE;
    case "batch":
      return JobKind.BATCH;
    default:
      return JobKind.UNSPECIFIED;
  }
}

/**
 * Builds the API `Job` of a row (the lease, owner and request id stay internal). With
 * `withSpec: false` the spec is left out (lists and watch updates after the first: a long
 * script would otherwise be repeated in every message); `kind` says what the job is either way.
 */
export function jobFromRow(row: JobRow, { withSpec = true }: { withSpec?: boolean } = {}): Job {
  return create(JobSchema, {
    id: row.id,
    kind: jobKindOf(row.kind),
    state: jobStateOf(row.state),
    ...(withSpec ? { spec: fromJson(JobSpecSchema, row.spec) } : {}),
    progress: {
      doneUnits: row.progress_done,
      totalUnits: row.progress_total,
      message: row.progress_message,
    },
    ...(row.state === "FAILED" || row.error_code !== 0
      ? { error: { code: row.error_code, message: row.error_message } }
      : {}),
    ...(row.output !== null && row.state === "SUCCEEDED"
      ? { output: fromJson(JobOutputSchema, row.output, { ignoreUnknownFields: true }) }
      : {}),
    attempts: row.attempts,
    labels: row.labels,
    webhookUrl: row.webhook_url,
    createTime: timestampFromDate(row.created),
    ...(row.started ? { startTime: timestampFromDate(row.started) } : {}),
    ...(row.ended ? { endTime: timestampFromDate(row.ended) } : {}),
  });
}
