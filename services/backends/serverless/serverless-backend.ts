/**
 * A serverless GPU endpoint (RunPod's queue API) as a voxgate backend: `GPUBackendService` over
 * `/run`, `/runsync`, `/status`, `/cancel` and `/health`, wrapped in an in-process Connect
 * transport so the registry reaches it through the same typed client as any agent.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { clone, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  createServiceImplSpec,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import { type Logger, pino } from "pino";
import { AudioEncoding } from "../../../gen/voxgate/v1/audio_pb.js";
import { BackendKind } from "../../../gen/voxgate/v1/backend_admin_pb.js";
import {
  GPUBackendService,
  ServingState,
  type SynthesizeRequest,
  SynthesizeRequestSchema,
  type SynthesizeResponseSchema,
} from "../../../gen/voxgate/v1/gpu_backend_pb.js";
import { createInProcessTransport } from "../../gateway/in-process-transport.js";
import type { BackendRegistration } from "../../registry/backend.js";
import {
  createRunPodClient,
  isRunPodApiError,
  isTerminalStatus,
  type RunPodClient,
  type RunPodJob,
} from "./runpod-client.js";
import {
  describeServerlessEngines,
  type ServerlessEngineDeclaration,
} from "./serverless-capabilities.js";
import { decodeTtsJobOutput, isTtsJobOutputError, toTtsJobInput } from "./tts-job.js";

/** Options of {@link createServerlessBackend} (resolved: the API key is the key itself). */
export interface ServerlessBackendOptions {
  /** Registry id, e.g. `runpod-a`. */
  id: string;
  /** Endpoint base URL, e.g. `https://api.runpod.ai/v2/abc123`. */
  endpointUrl: string;
  /** RunPod API key; never logged. */
  apiKey: string;
  /** Engines the endpoint's workers run (declared: serverless workers cannot say). */
  engines: readonly ServerlessEngineDeclaration[];
  /** Routing priority; lower is preferred. @default 10 */
  priority?: number;
  /** Calls routed here at once. @default 4 */
  slots?: number;
  /**
   * Wait of `POST /runsync`, in ms; 0 submits with `POST /run` and polls from the start. With
   * runsync a short job costs one request, but its id is unknown until runsync answers, so a
   * caller who leaves meanwhile has its job cancelled only then (at most this long after).
   * @default 0
   */
  runsyncWaitMs?: number;
  /** First interval between `/status` polls, in ms; each next one is 1.5 times longer. @default 100 */
  pollIntervalMinMs?: number;
  /** Longest interval between `/status` polls, in ms. @default 1_000 */
  pollIntervalMaxMs?: number;
  /** Longest job, queue time included, in ms; also sent as the job's executionTimeout. @default 600_000 */
  maxJobDurationMs?: number;
  /** Largest decoded audio of one job, in bytes. @default 64 MiB */
  maxAudioBytes?: number;
  /** Time one RunPod API request may take, in ms. @default 10_000 */
  requestTimeoutMs?: number;
  /** Largest audio message yielded, in bytes (sliced on frame boundaries). @default 65_536 */
  maxChunkBytes?: number;
  /** Labels for admin views. @default {} */
  labels?: Record<string, string>;
  /** Logger. @default silent */
  log?: Logger;
  /** The fetch to use (tests). @default globalThis.fetch */
  fetch?: typeof fetch;
  /**
   * Signs a short-lived read URL of a stored clone prompt by digest (the gateway's prompt store,
   * lifetime `VOXGATE_PROMPT_URL_TTL_SECONDS`). Serverless workers cannot hold a stream, so a
   * cloned voice reaches them as this URL; without it such calls fail FAILED_PRECONDITION.
   */
  signPromptUrl?: (digest: string) => Promise<string>;
}

/** Consecutive failed `/status` polls tolerated before the call fails. */
const MAX_POLL_FAILURES = 3;

/**
 * Creates the `GPUBackendService` implementation over a RunPod endpoint.
 *
 * Synthesize submits one job (input and output: see `tts-job.ts`), waits for it (runsync, then
 * `/status` polls with backoff), and streams the job's audio as soon as it arrives: the format,
 * audio slices of at most `maxChunkBytes`, then a summary. When the caller goes away or its
 * deadline passes, `POST /cancel/{id}` leaves at once; a job whose id is not known yet is
 * cancelled the moment its submission answers. Health maps `GET /health` to a serving state and
 * load. CreateClonePrompt, AnalyzeAudio and Generate answer UNIMPLEMENTED.
 */
export function createServerlessHandler(
  options: ServerlessBackendOptions & { client: RunPodClient },
): ServiceImpl<typeof GPUBackendService> & { readonly inFlight: number } {
  const { client, id } = options;
  const slots = options.slots ?? 4;
  const runsyncWaitMs = options.runsyncWaitMs ?? 0;
  const pollMinMs = options.pollIntervalMinMs ?? 100;
  const pollMaxMs = Math.max(pollMinMs, options.pollIntervalMaxMs ?? 1_000);
  const maxJobDurationMs = options.maxJobDurationMs ?? 600_000;
  const maxAudioBytes = options.maxAudioBytes ?? 64 * 1024 * 1024;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const maxChunkBytes = options.maxChunkBytes ?? 64 * 1024;
  const log = (options.log ?? pino({ level: "silent" })).child({
    component: "serverless-backend",
    backend: id,
  });
  const capabilities = describeServerlessEngines(options.engines, slots);
  let inFlight = 0;

  /** Sends `/cancel` once for a job, in the background; the caller does not wait for it. */
  const cancelJob = (jobId: string, reason: string) => {
    const sentAt = performance.now();
    client.cancel(jobId, { timeoutMs: requestTimeoutMs }).then(
      (job) =>
        log.info(
          { jobId, status: job.status, reason, ms: Math.round(performance.now() - sentAt) },
          "serverless job cancelled",
        ),
      (err: unknown) => log.warn({ err, jobId, reason }, "cancelling a serverless job failed"),
    );
  };

  async function* synthesize(
    request: SynthesizeRequest,
    context: HandlerContext,
  ): AsyncGenerator<MessageInitShape<typeof SynthesizeResponseSchema>> {
    if (request.text.trim().length === 0) {
      throw new ConnectError("text is empty", Code.InvalidArgument);
    }
    let jobRequest = request;
    if (request.voice?.kind.case === "clonePrompt" && !request.voice.kind.value.url) {
      if (!options.signPromptUrl) {
        throw new ConnectError(
          `backend ${id} is serverless: a clone prompt must reach it as a signed URL`,
          Code.FailedPrecondition,
        );
      }
      // Signed here, per call, on a copy: the URL is fresh, and the request a failover may hand
      // to another backend (an agent) never carries it.
      jobRequest = clone(SynthesizeRequestSchema, request);
      if (jobRequest.voice?.kind.case === "clonePrompt") {
        const { digest } = jobRequest.voice.kind.value;
        jobRequest.voice.kind.value.url = await options.signPromptUrl(digest);
        // The URL itself is a bearer credential until it expires: the log names the prompt only.
        log.info(
          { backend: id, digest, requestId: context.requestHeader.get("x-request-id") ?? "" },
          "signed clone prompt URL handed to serverless backend",
        );
      }
    }
    const { signal } = context;
    if (signal.aborted) throw ConnectError.from(signal.reason);
    const remainingMs = context.timeoutMs();
    const jobBudgetMs = Math.min(maxJobDurationMs, remainingMs ?? Number.POSITIVE_INFINITY);
    const policy = { executionTimeoutMs: Math.max(1_000, jobBudgetMs) };
    const input = toTtsJobInput(jobRequest);
    const startedAt = performance.now();
    const callLog = log.child({ requestId: context.requestHeader.get("x-request-id") ?? "" });

    let jobId: string | undefined;
    let finished = false;
    let cancelled = false;
    const cancelOnce = (reason: string) => {
      if (cancelled || finished || jobId === undefined) return;
      cancelled = true;
      cancelJob(jobId, reason);
    };
    const onAbort = () =>
      cancelOnce(signal.reason instanceof Error ? signal.reason.message : "aborted");
    signal.addEventListener("abort", onAbort, { once: true });
    inFlight++;
    try {
      // The submission is not tied to the caller's signal: aborting it mid-flight could leave a
      // job RunPod created but nobody knows the id of. When the caller leaves first, the answer
      // is still awaited in the background and the job cancelled then.
      const submission =
        runsyncWaitMs > 0
          ? client.runSync(input, {
              waitMs: Math.min(runsyncWaitMs, jobBudgetMs),
              policy,
              timeoutMs: requestTimeoutMs,
            })
          : client.run(input, { policy, timeoutMs: requestTimeoutMs });
      void submission.then(
        (job) => {
          jobId ??= job.id;
          if (isTerminalStatus(job.status)) finished = true;
          else if (signal.aborted) onAbort();
        },
        () => {},
      );
      let job = await untilAborted(submission, signal);
      jobId = job.id;
      if (isTerminalStatus(job.status) && job.output === undefined && job.error === undefined) {
        // A submission answer that is already terminal but says nothing: ask for the details.
        job = await client.status(jobId, { signal, timeoutMs: requestTimeoutMs });
      }
      callLog.debug({ jobId, status: job.status }, "serverless job submitted");

      let intervalMs = pollMinMs;
      let pollFailures = 0;
      while (!isTerminalStatus(job.status)) {
        if (performance.now() - startedAt > maxJobDurationMs) {
          cancelOnce("maxJobDurationMs");
          throw new ConnectError(
            `serverless job ${jobId} ran over ${maxJobDurationMs} ms (maxJobDurationMs); cancelled`,
            Code.DeadlineExceeded,
          );
        }
        await sleep(intervalMs, undefined, { signal }).catch(() => {
          throw ConnectError.from(signal.reason);
        });
        intervalMs = Math.min(pollMaxMs, Math.round(intervalMs * 1.5));
        try {
          job = await client.status(jobId, { signal, timeoutMs: requestTimeoutMs });
          pollFailures = 0;
        } catch (err) {
          if (signal.aborted) throw ConnectError.from(signal.reason);
          const transient =
            isRunPodApiError(err) &&
            (err.kind === "network" ||
              err.kind === "timeout" ||
              err.kind === "server" ||
              err.kind === "rate-limited");
          if (!transient || ++pollFailures >= MAX_POLL_FAILURES) throw err;
          callLog.warn({ err, jobId }, "polling a serverless job failed; retrying");
        }
      }
      finished = true;
      yield* answer(job, callLog);
    } catch (err) {
      throw toConnectError(err, signal, id, maxAudioBytes);
    } finally {
      signal.removeEventListener("abort", onAbort);
      // Reached too when the consumer stops reading early: no job may outlive its call.
      if (!finished) cancelOnce(signal.aborted ? "caller gone" : "call ended");
      inFlight--;
    }
  }

  function* answer(
    job: RunPodJob,
    callLog: Logger,
  ): Generator<MessageInitShape<typeof SynthesizeResponseSchema>> {
    switch (job.status) {
      case "COMPLETED":
        break;
      case "TIMED_OUT":
        throw new ConnectError(
          `serverless job ${job.id} timed out on backend ${id}${job.error ? `: ${job.error}` : ""}`,
          Code.DeadlineExceeded,
        );
      case "CANCELLED":
        throw new ConnectError(
          `serverless job ${job.id} was cancelled on backend ${id}`,
          Code.Unavailable,
        );
      default:
        throw new ConnectError(
          `serverless job ${job.id} failed on backend ${id}: ${job.error ?? "no error text"}`,
          Code.Unavailable,
        );
    }
    const audio = decodeTtsJobOutput(job.output, maxAudioBytes);
    callLog.debug(
      {
        jobId: job.id,
        bytes: audio.pcm.byteLength,
        delayMs: job.delayTime,
        execMs: job.executionTime,
      },
      "serverless job completed",
    );
    const { sampleRateHz, channels, pcm } = audio;
    const frameBytes = 2 * channels;
    const chunkBytes = Math.max(frameBytes, Math.floor(maxChunkBytes / frameBytes) * frameBytes);
    yield {
      kind: {
        case: "format",
        value: {
          encoding: AudioEncoding.PCM,
          sampleRateHz,
          channels,
          contentType: `audio/L16; rate=${sampleRateHz}; channels=${channels}`,
        },
      },
    };
    for (let offset = 0; offset < pcm.byteLength; offset += chunkBytes) {
      yield { kind: { case: "audio", value: pcm.subarray(offset, offset + chunkBytes) } };
    }
    const declared = options.engines[0];
    yield {
      kind: {
        case: "summary",
        value: {
          audioBytes: BigInt(pcm.byteLength),
          durationMs: BigInt(Math.round((pcm.byteLength / frameBytes / sampleRateHz) * 1000)),
          engine: audio.engine || declared?.id || "",
          model: audio.model ?? {
            family: declared?.model.family ?? "",
            size: declared?.model.size ?? "",
          },
        },
      },
    };
  }

  const unsupported = (what: string) =>
    new ConnectError(`backend ${id} (serverless) does not support ${what} yet`, Code.Unimplemented);

  return {
    get inFlight() {
      return inFlight;
    },
    async health(request, context) {
      let health: Awaited<ReturnType<RunPodClient["health"]>>;
      let warmUpJob = "";
      try {
        health = await client.health({ signal: context.signal, timeoutMs: requestTimeoutMs });
        // A warm-up asks for a worker only when none is idle or ready (no duplicate cold starts):
        // a job that does nothing, which RunPod starts a worker for.
        if (request.warmUp && health.workers.idle + health.workers.ready === 0) {
          const job = await client.run(
            { warmup: true },
            { signal: context.signal, timeoutMs: requestTimeoutMs, policy: { ttlMs: 60_000 } },
          );
          warmUpJob = job.id;
        }
      } catch (err) {
        throw toConnectError(err, context.signal, id, maxAudioBytes);
      }
      const { jobs, workers } = health;
      const usable = workers.idle + workers.ready + workers.running + workers.initializing;
      // Scaled to zero is normal (the next job starts a worker); only broken workers are not.
      const serving = !(workers.unhealthy > 0 && usable === 0);
      return {
        state: serving ? ServingState.SERVING : ServingState.NOT_SERVING,
        message:
          `queue ${jobs.inQueue}, in progress ${jobs.inProgress}; workers idle ${workers.idle}, ` +
          `running ${workers.running}, initializing ${workers.initializing}, ` +
          `throttled ${workers.throttled}, unhealthy ${workers.unhealthy}`,
        capabilities,
        load: { inFlight, slots },
        serverless: {
          workersIdle: workers.idle,
          workersReady: workers.ready,
          workersInitializing: workers.initializing,
          workersRunning: workers.running,
          workersThrottled: workers.throttled,
          workersUnhealthy: workers.unhealthy,
          jobsInQueue: jobs.inQueue,
          jobsInProgress: jobs.inProgress,
          jobsCompleted: jobs.completed,
          jobsFailed: jobs.failed,
          jobsRetried: jobs.retried,
          warmUpJob,
        },
      };
    },
    synthesize,
    // biome-ignore lint/correctness/useYield: unsupported until the job contract covers it
    async *createClonePrompt() {
      throw unsupported("clone prompt creation");
    },
    async analyzeAudio() {
      throw unsupported("audio analysis");
    },
    // biome-ignore lint/correctness/useYield: unsupported until the job contract covers it
    async *generate() {
      throw unsupported("text generation");
    },
  };
}

/**
 * Creates a serverless backend ready for `registry.add`: a typed `GPUBackendService` client over
 * an in-process transport to {@link createServerlessHandler}.
 */
export function createServerlessBackend(options: ServerlessBackendOptions): BackendRegistration {
  const client = createRunPodClient({
    endpointUrl: options.endpointUrl,
    apiKey: options.apiKey,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    // base64 is 4/3 of the audio, plus the JSON around it.
    maxResponseBytes: Math.ceil(((options.maxAudioBytes ?? 64 * 1024 * 1024) * 4) / 3) + 64 * 1024,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const handler = createServerlessHandler({ ...options, client });
  const transport = createInProcessTransport({
    services: [createServiceImplSpec<typeof GPUBackendService>(GPUBackendService, handler)],
    interceptors: [],
  });
  return {
    id: options.id,
    kind: BackendKind.SERVERLESS,
    client: createClient(GPUBackendService, transport),
    capabilities: describeServerlessEngines(options.engines, options.slots ?? 4),
    priority: options.priority ?? 10,
    version: "runpod",
    address: client.endpointUrl,
    labels: { ...options.labels },
  };
}

/** Resolves with `promise`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(ConnectError.from(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(ConnectError.from(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/** Translates any failure of a serverless call into the ConnectError the caller sees. */
function toConnectError(
  err: unknown,
  signal: AbortSignal,
  backendId: string,
  maxAudioBytes: number,
): ConnectError {
  if (err instanceof ConnectError) return err;
  if (signal.aborted) return ConnectError.from(signal.reason);
  if (isTtsJobOutputError(err)) {
    return new ConnectError(
      `backend ${backendId}: ${err.message}`,
      Code.Internal,
      undefined,
      undefined,
      err,
    );
  }
  if (isRunPodApiError(err)) {
    const message =
      err.kind === "unauthorized"
        ? `backend ${backendId}: RunPod refused the API key (${err.message}); check the variable named by apiKeyEnv`
        : err.kind === "too-large"
          ? `backend ${backendId}: ${err.message}: the job's audio is over ${maxAudioBytes} bytes (maxAudioBytes)`
          : `backend ${backendId}: ${err.message}`;
    const code =
      err.kind === "too-large"
        ? Code.ResourceExhausted
        : err.kind === "protocol"
          ? Code.Internal
          : Code.Unavailable;
    return new ConnectError(message, code, undefined, undefined, err);
  }
  return ConnectError.from(err, Code.Internal);
}
