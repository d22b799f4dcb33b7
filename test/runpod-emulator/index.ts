export { createQwen3V1Worker, type Qwen3V1Worker } from "./qwen3-v1-worker.js";
export {
  createRunPodEmulator,
  type EmulatedJob,
  type EmulatedJobStatus,
  type EmulatorRequest,
  type RunPodEmulator,
  type RunPodEmulatorFaults,
  type RunPodEmulatorOptions,
} from "./runpod-emulator.js";
export { createTtsWorkerHandler, type TtsWorkerOptions, type WorkerHandler } from "./tts-worker.js";
