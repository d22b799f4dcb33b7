import type { DescService } from "@bufbuild/protobuf";
import { BackendAdminService } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { JobService } from "../../gen/voxgate/v1/job_pb.js";
import { LlmService } from "../../gen/voxgate/v1/llm_pb.js";
import { PromptStoreService } from "../../gen/voxgate/v1/prompt_store_pb.js";
import { TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { VoiceService } from "../../gen/voxgate/v1/voice_pb.js";

/**
 * The services whose `google.api.http` annotations become REST routes on the public port, in
 * route table order. The gateway's transcoder and the OpenAPI generator (`npm run gen`) both read
 * this list, so the published document describes the routes the gateway serves.
 */
export const REST_SERVICES: readonly DescService[] = [
  TtsService,
  VoiceService,
  BackendAdminService,
  JobService,
  PromptStoreService,
  LlmService,
];
