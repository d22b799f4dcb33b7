import { Code, ConnectError } from "@connectrpc/connect";
import type { JobExecutor } from "../job-executor.js";
import { type JobExecutorDeps, jobCallContext } from "./executor-deps.js";

/**
 * Creates the `analyze_voice` executor: it asks VoiceService.AnalyzeVoice (which measures the
 * voice's reference audio and records the result on the voice) as the job's owner, and puts the
 * analysis in the job's output. The call is idempotent, so a re-run after a crash simply analyzes
 * again.
 */
export function createAnalyzeVoiceExecutor(deps: JobExecutorDeps): JobExecutor {
  return {
    kind: "analyzeVoice",
    validate(spec) {
      if (spec.kind.case !== "analyzeVoice") {
        throw new ConnectError("spec is not an analyze_voice spec", Code.InvalidArgument);
      }
      if (spec.kind.value.voiceId === "") {
        throw new ConnectError("analyze_voice.voice_id is empty", Code.InvalidArgument);
      }
    },
    async run(job, context) {
      if (job.spec?.kind.case !== "analyzeVoice") {
        throw new ConnectError(`job ${job.id} is not an analyze_voice job`, Code.InvalidArgument);
      }
      const { voiceId, kinds } = job.spec.kind.value;
      await context.reportProgress(0, 1, `analyzing voice ${voiceId}`);
      const response = await deps.voices.analyzeVoice(
        { voiceId, kinds },
        { signal: context.signal, contextValues: jobCallContext(job, context, "analyze") },
      );
      const analysis = response.voice?.analysis;
      if (!analysis) {
        throw new ConnectError(
          `VoiceService returned no analysis for voice ${voiceId}`,
          Code.Internal,
        );
      }
      await context.reportProgress(1, 1, "analyzed");
      return { output: { analysis, itemCount: 1 } };
    },
  };
}
