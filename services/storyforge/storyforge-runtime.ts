import type { Client, Transport } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { JobService } from "../../gen/voxgate/v1/job_pb.js";
import type { VoiceService } from "../../gen/voxgate/v1/voice_pb.js";
import type { DatabaseProvider } from "../database/database-provider.js";
import type { HttpFrontend } from "../gateway/http-frontend.js";
import type { BlobStore } from "../object-store/blob-store.js";
import { createLazyBlobStore } from "../object-store/lazy-blob-store.js";
import type { BackendRegistry } from "../registry/index.js";
import { createCallTags } from "./call-tags.js";
import { createClipVoices } from "./clip-voices.js";
import { createCloudClient } from "./cloud-client.js";
import { createCloudWorker } from "./cloud-worker.js";
import { createLlmServicePort } from "./llm-port.js";
import { createMediaFetcher } from "./media-fetcher.js";
import { type AbortHook, createStoryForgeFrontend, type LlmPort } from "./storyforge-frontend.js";
import type { StoryForgeOptions } from "./storyforge-options.js";
import { createWorkerStore } from "./worker-store.js";

/** Options of {@link createStoryForgeRuntime}. */
export interface StoryForgeRuntimeOptions {
  /** Resolved StoryForge options. */
  options: StoryForgeOptions;
  /** The registry. */
  registry: BackendRegistry;
  /** The gateway's database (the worker keeps its Cloud jobs there). */
  database: DatabaseProvider;
  /** JobService in process (the worker's renders). */
  jobs: Client<typeof JobService>;
  /** VoiceService in process (the worker clones clip voices). */
  voices: Client<typeof VoiceService>;
  /** Deadline of calls made for Cloud, in ms. */
  timeoutMs: number;
  /** Deepest JSON nesting (the gateway's VOXGATE_MAX_JSON_DEPTH). */
  maxJsonDepth: number;
  /** The LLM path. @default LlmService in process */
  llm?: LlmPort;
  /** Root logger. */
  log: Logger;
}

/** The StoryForge pieces of one gateway. */
export interface StoryForgeRuntime {
  /** Cloud's bucket, when configured. */
  readonly bucket: BlobStore | undefined;
  /** The frontend over `transport` (the gateway's in-process transport). */
  frontend(transport: Transport): HttpFrontend;
  /** Starts the Cloud job worker when it is configured. */
  start(): void;
  /** Stops the worker and closes the bucket client. Idempotent. */
  close(): Promise<void>;
}

/** Assembles the StoryForge surface (and, when configured, the Cloud job worker). */
export function createStoryForgeRuntime(runtime: StoryForgeRuntimeOptions): StoryForgeRuntime {
  const { options, log } = runtime;
  const bucketOptions = options.bucket;
  const bucket = bucketOptions
    ? createLazyBlobStore("s3", async () => {
        const { createS3BlobStore } = await import("../object-store/s3-blob-store.js");
        const { publicBases: _bases, ...s3 } = bucketOptions;
        return createS3BlobStore(s3);
      })
    : undefined;
  const media = createMediaFetcher({
    bucket:
      bucket && bucketOptions
        ? { store: bucket, publicBases: bucketOptions.publicBases }
        : undefined,
    httpBases: options.fetchBases,
    allowLoopback: options.fetchAllowLoopback,
    maxBytes: options.fetchMaxBytes,
    timeoutMs: options.fetchTimeoutMs,
  });
  const tags = createCallTags();
  const abortHooks: AbortHook[] = [];
  const workerOptions = options.worker;
  const worker =
    workerOptions && bucket && bucketOptions
      ? createCloudWorker({
          cloud: createCloudClient({
            baseUrl: workerOptions.cloudUrl,
            jobToken: workerOptions.jobToken,
          }),
          store: createWorkerStore(runtime.database),
          jobs: runtime.jobs,
          clipVoices: createClipVoices(runtime.voices, media),
          bucket,
          publicBase: bucketOptions.publicBases[0] as string,
          outputPrefix: workerOptions.outputPrefix,
          pollMs: workerOptions.pollMs,
          leaseMs: workerOptions.leaseMs,
          log,
        })
      : undefined;
  if (worker) abortHooks.push((id) => worker.abort(id));
  let closing: Promise<void> | undefined;
  return {
    bucket,
    frontend(transport) {
      return createStoryForgeFrontend({
        basePath: options.basePath,
        transport,
        registry: runtime.registry,
        media,
        tags,
        llm: runtime.llm ?? createLlmServicePort(transport),
        abortHooks,
        limits: { maxBytes: options.maxJsonBytes, maxDepth: runtime.maxJsonDepth },
        timeoutMs: runtime.timeoutMs,
        log,
      });
    },
    start() {
      worker?.start();
    },
    close() {
      closing ??= (async () => {
        await worker?.close();
        await bucket?.close();
      })();
      return closing;
    },
  };
}
