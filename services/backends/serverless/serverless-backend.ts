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
import { qwen3Language, qwen3PromptName } from "../../engines/model-server/qwen3-tts-engine.js";
import { createInProcessTransport } from "../../gateway/in-process-transport.js";
import type { BackendRegistration } from "../../registry/backend.js";
import { decodeQwen3V1Output, isPromptMissing, qwen3V1Input } from "./qwen3-v1-job.js";
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

/**
 * Options of {@link createServerlessBackend} (resolved: the API key is the key itself). The numbers
 * are the keys of a `backends` entry, whose defaults live in its schema (`serverless-config.ts`;
 * {@link serverlessEntryDefaults} for hand-built options).
 */
export interface ServerlessBackendOptions {
  /** Registry id, e.g. `runpod-a`. */
  id: string;
  /** Endpoint base URL, e.g. `https://api.runpod.ai/v2/abc123`. */
  endpointUrl: string;
  /** RunPod API key; never logged. */
  apiKey: string;
  /** Engines the endpoint's workers run (declared: serverless workers cannot say). */
  engines: readonly ServerlessEngineDeclaration[];
  /** Routing priority; lower is preferred. */
  priority: number;
  /** Calls routed here at once. */
  slots: number;
  /**
   * Wait of `POST /runsync`, in ms; 0 submits with `POST /run` and polls from the start. With
   * runsync a short job costs one request, but its id is unknown until runsync answers, so a
   * caller who leaves meanwhile has its job cancelled only then (at most this long after).
   */
  runsyncWaitMs: number;
  /** First interval between `/status` polls, in ms; each next one is 1.5 times longer. */
  pollIntervalMinMs: number;
  /** Longest interval between `/status` polls, in ms. */
  pollIntervalMaxMs: number;
  /** Longest job, queue time included, in ms; also sent as the job's executionTimeout. */
  maxJobDurationMs: number;
  /** Largest decoded audio of one job, in bytes. */
  maxAudioBytes: number;
  /** Time one RunPod API request may take, in ms. */
  requestTimeoutMs: number;
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
  /**
   * What the endpoint's workers take: `voxgate` (voxgate's own job format, `tts-job.ts`) or
   * `qwen3-v1` (the predecessor's Qwen3-TTS RunPod worker: `{endpoint, method, body, api_key}` in,
   * `{audio, duration_s, format}` or `{error}` out; see `qwen3-v1-job.ts`). @default "voxgate"
   */
  workerFormat?: "voxgate" | "qwen3-v1";
  /** `api_key` put in each `qwen3-v1` job's input (the worker's own `API_KEY`); never logged. */
  workerApiKey?: string;
  /**
   * The reference recording a stored clone prompt was made from, by prompt digest: a `qwen3-v1`
   * worker keeps prompts by name in its own store, so one it lacks is made there from this
   * reference (sent inside the job, never as a URL).
   */
  promptReference?: (digest: string) => Promise<PromptReference | undefined>;
}

/** The reference recording of a clone prompt, for workers that make prompts themselves. */
export interface PromptReference {
  /** The recording. */
  audio: Uint8Array;
  /** Its transcript; empty when unknown. */
  referenceText: string;
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
  const { slots, runsyncWaitMs, maxJobDurationMs, maxAudioBytes, requestTimeoutMs } = options;
  const pollMinMs = options.pollIntervalMinMs;
  const pollMaxMs = Math.max(pollMinMs, options.pollIntervalMaxMs);
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
    // The Qwen3 v1 worker takes prompts by name (made from the reference), never by URL.
    const wantsUrl = options.workerFormat !== "qwen3-v1";
    if (wantsUrl && request.voice?.kind.case === "clonePrompt" && !request.voice.kind.value.url) {
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
    const callLog = log.child({ requestId: context.requestHeader.get("x-request-id") ?? "" });
    inFlight++;
    try {
      if (options.workerFormat === "qwen3-v1") {
        yield* synthesizeQwen3V1(request, context, callLog);
        return;
      }
      const job = await runJob(toTtsJobInput(jobRequest), context, callLog);
      yield* answer(job, callLog);
    } catch (err) {
      throw toConnectError(err, context.signal, id, maxAudioBytes);
    } finally {
      inFlight--;
    }
  }

  /**
   * Runs one job to its end: submits it (runsync or run), polls `/status` with backoff, and
   * cancels it when the caller leaves, its deadline passes or it runs over `maxJobDurationMs`.
   * Returns the terminal job; throws ConnectError (or RunPod API errors) otherwise.
   */
  async function runJob(
    input: unknown,
    context: HandlerContext,
    callLog: Logger,
  ): Promise<RunPodJob> {
    const { signal } = context;
    if (signal.aborted) throw ConnectError.from(signal.reason);
    const remainingMs = context.timeoutMs();
    const jobBudgetMs = Math.min(maxJobDurationMs, remainingMs ?? Number.POSITIVE_INFINITY);
    const policy = { executionTimeoutMs: Math.max(1_000, jobBudgetMs) };
    const startedAt = performance.now();

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
      return job;
    } finally {
      signal.removeEventListener("abort", onAbort);
      // Reached too when the call ends early: no job may outlive its call.
      if (!finished) cancelOnce(signal.aborted ? "caller gone" : "call ended");
    }
  }

  /**
   * Synthesis on the predecessor's Qwen3-TTS worker: a clone prompt is spoken by name
   * (`/api/v1/tts/clone-prompt`); when the worker lacks it, it is made there first from the
   * voice's reference recording (`/api/v1/voices/clone-prompt`, the audio inside the job) and
   * the synthesis repeated. `params.mode = "voice_design"` goes to `/api/v1/voices/design`.
   */
  async function* synthesizeQwen3V1(
    request: SynthesizeRequest,
    context: HandlerContext,
    callLog: Logger,
  ): AsyncGenerator<MessageInitShape<typeof SynthesizeResponseSchema>> {
    const apiKey = options.workerApiKey ?? "";
    const call = async (endpoint: string, body: Record<string, unknown>) => {
      const job = await runJob(qwen3V1Input(endpoint, body, apiKey), context, callLog);
      if (job.status !== "COMPLETED") return { job, output: undefined };
      return { job, output: job.output as Record<string, unknown> | undefined };
    };
    let plan: { endpoint: string; body: Record<string, unknown> };
    let prompt: { digest: string; name: string } | undefined;
    if (request.voice?.kind.case === "clonePrompt") {
      const { digest } = request.voice.kind.value;
      prompt = { digest, name: qwen3PromptName(digest) };
      plan = {
        endpoint: "/api/v1/tts/clone-prompt",
        body: {
          text: request.text,
          voice_prompt: prompt.name,
          language: qwen3Language(request.language),
          format: "wav",
        },
      };
    } else if (request.params.mode === "voice_design") {
      if (!request.instructions.trim()) {
        throw new ConnectError(
          "voice design needs instructions that describe the voice",
          Code.InvalidArgument,
        );
      }
      plan = {
        endpoint: "/api/v1/voices/design",
        body: {
          text: request.text,
          instruct: request.instructions,
          language: qwen3Language(request.language),
          format: "wav",
        },
      };
    } else {
      throw new ConnectError(
        `backend ${id} runs the Qwen3-TTS RunPod worker, which speaks clone prompts and voice designs only`,
        Code.InvalidArgument,
      );
    }
    let { job, output } = await call(plan.endpoint, plan.body);
    if (prompt && isPromptMissing(output)) {
      const reference = await options.promptReference?.(prompt.digest);
      if (!reference) {
        throw new ConnectError(
          `backend ${id}'s worker lacks prompt ${prompt.name} and the gateway has no reference recording to make it from`,
          Code.FailedPrecondition,
        );
      }
      callLog.info({ prompt: prompt.name }, "making the clone prompt on the serverless worker");
      const made = await call("/api/v1/voices/clone-prompt", {
        name: prompt.name,
        audio: Buffer.from(reference.audio).toString("base64"),
        ref_text: reference.referenceText,
        tags: ["voxgate"],
      });
      if (made.output?.error !== undefined || made.job.status !== "COMPLETED") {
        yield* answer(
          made.job.status === "COMPLETED"
            ? { ...made.job, status: "FAILED", error: String(made.output?.error) }
            : made.job,
          callLog,
        );
        return;
      }
      ({ job, output } = await call(plan.endpoint, plan.body));
    }
    if (job.status !== "COMPLETED" || output?.error !== undefined) {
      yield* answer(
        job.status === "COMPLETED"
          ? { ...job, status: "FAILED", error: String(output?.error) }
          : job,
        callLog,
      );
      return;
    }
    const audio = decodeQwen3V1Output(output, maxAudioBytes);
    yield* pcmAnswer(audio.pcm, audio.sampleRateHz, audio.channels, "qwen3-tts", undefined);
  }

  function* pcmAnswer(
    pcm: Uint8Array,
    sampleRateHz: number,
    channels: number,
    engine: string,
    model: { family: string; size: string } | undefined,
  ): Generator<MessageInitShape<typeof SynthesizeResponseSchema>> {
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
          engine: engine || declared?.id || "",
          model: model ?? {
            family: declared?.model.family ?? "",
            size: declared?.model.size ?? "",
          },
        },
      },
    };
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
    yield* pcmAnswer(audio.pcm, audio.sampleRateHz, audio.channels, audio.engine, audio.model);
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
    requestTimeoutMs: options.requestTimeoutMs,
    // base64 is 4/3 of the audio, plus the JSON around it.
    maxResponseBytes: Math.ceil((options.maxAudioBytes * 4) / 3) + 64 * 1024,
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
    capabilities: describeServerlessEngines(options.engines, options.slots),
    priority: options.priority,
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
