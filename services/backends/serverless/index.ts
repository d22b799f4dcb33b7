export {
  createRunPodClient,
  isRunPodApiError,
  isTerminalStatus,
  RunPodApiError,
  type RunPodCallOptions,
  type RunPodClient,
  type RunPodClientOptions,
  type RunPodErrorKind,
  type RunPodHealth,
  type RunPodJob,
  type RunPodJobPolicy,
  type RunPodJobStatus,
  type RunPodSubmitOptions,
} from "./runpod-client.js";
export {
  createServerlessBackend,
  createServerlessHandler,
  type ServerlessBackendOptions,
} from "./serverless-backend.js";
export {
  describeServerlessEngines,
  type ServerlessEngineDeclaration,
} from "./serverless-capabilities.js";
export {
  FEATURE_NAMES,
  type StaticBackendConfig,
  serverlessEntryDefaults,
  staticBackendsSchema,
} from "./serverless-config.js";
export {
  type DecodedTtsOutput,
  decodeTtsJobOutput,
  isTtsJobOutputError,
  JOB_ENCODING,
  type TtsJobInput,
  type TtsJobOutput,
  TtsJobOutputError,
  toTtsJobInput,
  ttsJobInputSchema,
} from "./tts-job.js";
