/**
 * Body of an audio-analysis worker thread, started through `services/worker/ts-worker-entry.mjs`:
 * runs the one task it is sent and posts the result.
 */
import { parentPort } from "node:worker_threads";
import type { AnalysisResultMessage, AnalysisTask } from "./analysis-protocol.js";
import { analyzePcm, profileVoice } from "./audio-analysis.js";

if (parentPort === null) {
  throw new Error("analysis-worker must run in a worker thread");
}
const port = parentPort;

port.once("message", (task: AnalysisTask) => {
  let answer: AnalysisResultMessage;
  try {
    answer =
      task.type === "analyze"
        ? { type: "analyzed", analysis: analyzePcm(task.pcm, task.kinds) }
        : { type: "profiled", profile: profileVoice(task.pcm) };
  } catch (err) {
    const { name, message } = err as Error;
    answer = { type: "failed", name: String(name), message: String(message) };
  }
  port.postMessage(answer);
});
