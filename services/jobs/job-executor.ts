import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import type { Job, JobOutputSchema } from "../../gen/voxgate/v1/job_pb.js";
import type { Principal } from "../auth/token-store.js";
import type { BlobStore } from "../object-store/blob-store.js";

/** What the runner gives an executor while it holds a job's lease. */
export interface JobContext {
  /** Aborts when the job is cancelled, its lease is lost, or the gateway shuts down. */
  signal: AbortSignal;
  /**
   * Aborts when the gateway starts draining (a restart): start no new piece of work (segment,
   * item), let those running finish and keep their checkpoints, then throw this signal's reason
   * so the job is given back and resumes elsewhere from them. Absent: never.
   */
  windDown?: AbortSignal | undefined;
  /** Logger with the job id bound. */
  log: Logger;
  /** Object store for checkpoints and the output (keys under {@link JobContext.keyPrefix}). */
  blobs: BlobStore;
  /**
   * Deterministic key prefix of this job's objects, `jobs/<random part of the job id>/` (blob keys
   * allow no `_`, so `job_` is left out; see `jobKeyPrefix`): a re-run after a crash finds what an
   * earlier attempt stored and writes to the same keys, so side effects stay idempotent.
   */
  keyPrefix: string;
  /**
   * Records progress (persisted, streamed to watchers in order). Throws the abort reason when the
   * lease was lost, so a stale runner stops writing.
   */
  reportProgress(done: number, total: number, message: string): Promise<void>;
  /**
   * Who the job runs as: the principal that created it (token name and scopes as recorded at
   * CreateJob). Executors put it in the call context of their in-process calls, so handlers that
   * look at the caller (cloned voices, ownership) treat the job like its owner's own call.
   * Undefined when the runner does not record owners; calls then run without a principal.
   */
  owner?: Principal | undefined;
}

/** What a finished job leaves behind. */
export interface JobResult {
  /** Output description stored on the job (digest, size, content type, duration, analysis…). */
  output: MessageInitShape<typeof JobOutputSchema>;
  /** Key of the output object in the blob store, when the job produced one (GetJobOutput). */
  outputKey?: string;
}

/**
 * Runs one kind of job. `run` may be called again for the same job after a crash or a lost lease;
 * it must resume from its checkpoints and produce the same output keys.
 */
export interface JobExecutor {
  /** The `JobSpec.kind.case` this executor runs, e.g. `render`. */
  readonly kind: NonNullable<Job["spec"]>["kind"]["case"] & string;
  /**
   * Runs the job to completion. Throw a `ConnectError` with a non-retryable code
   * (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, PERMISSION_DENIED) to fail the job at once;
   * other errors are retried with backoff until the attempt limit.
   */
  run(job: Job, context: JobContext): Promise<JobResult>;
  /**
   * Checks a spec of this kind before the job is queued (CreateJob), so a bad script fails at once
   * with INVALID_ARGUMENT naming the field and the limit, and nothing is stored. Optional; `run`
   * checks again, because limits may change between create and run.
   * @throws ConnectError INVALID_ARGUMENT
   */
  validate?(spec: NonNullable<Job["spec"]>): void;
}
