export {
  type AdmissionQueue,
  type AdmissionQueueOptions,
  type AdmissionRequest,
  type AdmissionStats,
  createAdmissionQueue,
  kRetryAfterHeader,
} from "./admission-queue.js";
