/**
 * The job executors: what the job runner runs for each `JobSpec` kind. They call the gateway's
 * own services in process, so jobs get the same validation, routing and failover as callers.
 */
import type { JobExecutor } from "../job-executor.js";
import { createAnalyzeVoiceExecutor } from "./analyze-voice-executor.js";
import { createBatchExecutor } from "./batch-executor.js";
import type { JobExecutorDeps } from "./executor-deps.js";
import { createRenderExecutor } from "./render-executor.js";

export { createAnalyzeVoiceExecutor } from "./analyze-voice-executor.js";
export { batchItemKey, createBatchExecutor } from "./batch-executor.js";
export {
  type JobExecutorDeps,
  jobCallContext,
  type RenderLimits,
  type RenderSettings,
  renderLimitsFromSettings,
} from "./executor-deps.js";
export { createRenderExecutor } from "./render-executor.js";
export { type PlannedSegment, planRender, type RenderPlan, silenceFrames } from "./render-plan.js";
export { segmentKey } from "./segment-checkpoints.js";

/**
 * Creates one executor per job kind: `render`, `analyzeVoice` and `batch`. The runner picks by
 * `job.spec.kind.case`, and CreateJob may call an executor's `validate` to refuse a bad spec before
 * it is queued.
 */
export function createJobExecutors(deps: JobExecutorDeps): JobExecutor[] {
  return [createRenderExecutor(deps), createAnalyzeVoiceExecutor(deps), createBatchExecutor(deps)];
}
