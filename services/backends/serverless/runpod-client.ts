/**
 * A small client of RunPod's serverless queue API (`/run`, `/runsync`, `/status`, `/cancel`,
 * `/health`) over `fetch`: every call has a timeout and an AbortSignal, and every failure is a
 * {@link RunPodApiError} whose `kind` says how to react.
 */
import { z } from "zod";

/** Where a RunPod job is. The last four are terminal. */
export type RunPodJobStatus =
  | "IN_QUEUE"
  | "IN_PROGRESS"
  | "COMPLETED"
  | "FAILED"
  | "CANCELLED"
  | "TIMED_OUT";

const TERMINAL: ReadonlySet<RunPodJobStatus> = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
]);

/** Returns whether a job in `status` will not change any more. */
export function isTerminalStatus(status: RunPodJobStatus): boolean {
  return TERMINAL.has(status);
}

const jobSchema = z.looseObject({
  id: z.string().min(1),
  status: z.enum(["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]),
  output: z.unknown().optional(),
  error: z.unknown().optional(),
  delayTime: z.number().optional(),
  executionTime: z.number().optional(),
});

const count = z.number().int().min(0).catch(0);
const healthSchema = z.looseObject({
  jobs: z
    .looseObject({
      completed: count,
      failed: count,
      inProgress: count,
      inQueue: count,
      retried: count,
    })
    .partial()
    .default({}),
  workers: z
    .looseObject({
      idle: count,
      initializing: count,
      ready: count,
      running: count,
      throttled: count,
      unhealthy: count,
    })
    .partial()
    .default({}),
});

/** A job as the API reports it. */
export interface RunPodJob {
  /** Job id. */
  id: string;
  /** Where the job is. */
  status: RunPodJobStatus;
  /** The handler's output, once COMPLETED. */
  output?: unknown;
  /** The error text, once FAILED (or TIMED_OUT, when RunPod says why). */
  error?: string;
  /** Time in the queue, in ms. */
  delayTime?: number;
  /** Time on a worker, in ms. */
  executionTime?: number;
}

/** An endpoint's queue and workers, from `GET /health`. Missing counts are 0. */
export interface RunPodHealth {
  /** Job counts. */
  jobs: { completed: number; failed: number; inProgress: number; inQueue: number; retried: number };
  /** Worker counts. */
  workers: {
    idle: number;
    initializing: number;
    ready: number;
    running: number;
    throttled: number;
    unhealthy: number;
  };
}

/** Execution policy sent with a job. */
export interface RunPodJobPolicy {
  /** Longest time the job may run on a worker before RunPod ends it as TIMED_OUT, in ms. */
  executionTimeoutMs?: number;
  /** Longest life of the job, queue time included, in ms. */
  ttlMs?: number;
}

/** Options of one call. */
export interface RunPodCallOptions {
  /** Aborts the HTTP request. */
  signal?: AbortSignal | undefined;
  /** Overrides {@link RunPodClientOptions.requestTimeoutMs}, in ms. */
  timeoutMs?: number | undefined;
}

/** Options of a job submission. */
export interface RunPodSubmitOptions extends RunPodCallOptions {
  /** Execution policy. */
  policy?: RunPodJobPolicy | undefined;
}

/** Options of {@link createRunPodClient}. */
export interface RunPodClientOptions {
  /** Endpoint base URL, e.g. `https://api.runpod.ai/v2/abc123` (no trailing operation). */
  endpointUrl: string;
  /** API key, sent as `authorization: Bearer <key>`. */
  apiKey: string;
  /**
   * Time one request may take (for `/runsync`: on top of its wait), in ms.
   * @default 10_000
   */
  requestTimeoutMs?: number;
  /**
   * Largest response body read, in bytes; a larger one fails with kind `too-large`.
   * @default 100 MiB
   */
  maxResponseBytes?: number;
  /** The fetch to use (tests). @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** How a RunPod call failed. */
export type RunPodErrorKind =
  | "unauthorized"
  | "not-found"
  | "bad-request"
  | "rate-limited"
  | "server"
  | "timeout"
  | "aborted"
  | "network"
  | "protocol"
  | "too-large";

/** A failed RunPod API call. The message never contains the API key. */
export class RunPodApiError extends Error {
  override readonly name = "RunPodApiError";
  /** How it failed. */
  readonly kind: RunPodErrorKind;
  /** HTTP status, when a response arrived. */
  readonly httpStatus: number | undefined;

  /** Creates the error; `options.cause` keeps the underlying failure. */
  constructor(kind: RunPodErrorKind, message: string, httpStatus?: number, options?: ErrorOptions) {
    super(message, options);
    this.kind = kind;
    this.httpStatus = httpStatus;
  }
}

/** Returns whether `err` is a {@link RunPodApiError}. */
export function isRunPodApiError(err: unknown): err is RunPodApiError {
  return err instanceof RunPodApiError;
}

/** A RunPod serverless endpoint. */
export interface RunPodClient {
  /** The endpoint base URL. */
  readonly endpointUrl: string;
  /** `POST /run`: queues a job and answers at once with its id. */
  run(input: unknown, options?: RunPodSubmitOptions): Promise<RunPodJob>;
  /**
   * `POST /runsync?wait=`: queues a job and answers when it ends or after `waitMs`, whichever is
   * first (then the job is still IN_QUEUE or IN_PROGRESS). The HTTP timeout is `waitMs` plus the
   * request timeout.
   */
  runSync(input: unknown, options: RunPodSubmitOptions & { waitMs: number }): Promise<RunPodJob>;
  /** `GET /status/{id}`. */
  status(jobId: string, options?: RunPodCallOptions): Promise<RunPodJob>;
  /** `POST /cancel/{id}`. */
  cancel(jobId: string, options?: RunPodCallOptions): Promise<RunPodJob>;
  /** `GET /health`. */
  health(options?: RunPodCallOptions): Promise<RunPodHealth>;
}

/** Creates a client of one RunPod endpoint. */
export function createRunPodClient(options: RunPodClientOptions): RunPodClient {
  const base = options.endpointUrl.replace(/\/+$/, "");
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const maxResponseBytes = options.maxResponseBytes ?? 100 * 1024 * 1024;
  const doFetch = options.fetch ?? globalThis.fetch;
  if (!options.apiKey) throw new RangeError("a RunPod client needs an API key");

  async function call(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    call: RunPodCallOptions,
    extraTimeoutMs = 0,
  ): Promise<unknown> {
    const operation = `${method} ${path.split("?")[0]}`;
    const timeoutMs = (call.timeoutMs ?? requestTimeoutMs) + extraTimeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = call.signal ? AbortSignal.any([call.signal, timeout]) : timeout;
    const init: RequestInit = {
      method,
      signal,
      headers: {
        authorization: `Bearer ${options.apiKey}`,
        accept: "application/json",
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    };
    let response: Response;
    let text: string;
    try {
      response = await doFetch(`${base}${path}`, init);
      text = await readText(response, maxResponseBytes, operation);
    } catch (err) {
      if (isRunPodApiError(err)) throw err;
      if (call.signal?.aborted) {
        throw new RunPodApiError("aborted", `${operation} aborted`, undefined, { cause: err });
      }
      if (timeout.aborted) {
        throw new RunPodApiError("timeout", `${operation} took over ${timeoutMs} ms`, undefined, {
          cause: err,
        });
      }
      throw new RunPodApiError(
        "network",
        `${operation} failed: ${(err as Error).message}`,
        undefined,
        { cause: err },
      );
    }
    if (!response.ok) {
      const detail = text.slice(0, 300).trim();
      throw new RunPodApiError(
        kindOfStatus(response.status),
        `${operation} answered HTTP ${response.status}${detail ? `: ${detail}` : ""}`,
        response.status,
      );
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new RunPodApiError(
        "protocol",
        `${operation} answered a body that is not JSON`,
        response.status,
        { cause: err },
      );
    }
  }

  const job = (operation: string, value: unknown): RunPodJob => {
    const parsed = jobSchema.safeParse(value);
    if (!parsed.success) {
      throw new RunPodApiError(
        "protocol",
        `${operation} answered an unexpected job: ${parsed.error.message}`,
      );
    }
    const { id, status, output, error, delayTime, executionTime } = parsed.data;
    return {
      id,
      status,
      ...(output !== undefined ? { output } : {}),
      ...(error !== undefined && error !== null
        ? { error: typeof error === "string" ? error : JSON.stringify(error) }
        : {}),
      ...(delayTime !== undefined ? { delayTime } : {}),
      ...(executionTime !== undefined ? { executionTime } : {}),
    };
  };

  const submitBody = (input: unknown, policy: RunPodJobPolicy | undefined) => ({
    input,
    ...(policy && (policy.executionTimeoutMs !== undefined || policy.ttlMs !== undefined)
      ? {
          policy: {
            ...(policy.executionTimeoutMs !== undefined
              ? { executionTimeout: Math.round(policy.executionTimeoutMs) }
              : {}),
            ...(policy.ttlMs !== undefined ? { ttl: Math.round(policy.ttlMs) } : {}),
          },
        }
      : {}),
  });

  const jobPath = (operation: string, jobId: string) => {
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(jobId)) {
      throw new RunPodApiError("bad-request", `job id ${JSON.stringify(jobId)} is not valid`);
    }
    return `/${operation}/${jobId}`;
  };

  return {
    endpointUrl: base,
    async run(input, submit = {}) {
      return job("POST /run", await call("POST", "/run", submitBody(input, submit.policy), submit));
    },
    async runSync(input, submit) {
      const waitMs = Math.max(0, Math.round(submit.waitMs));
      return job(
        "POST /runsync",
        await call(
          "POST",
          `/runsync?wait=${waitMs}`,
          submitBody(input, submit.policy),
          submit,
          waitMs,
        ),
      );
    },
    async status(jobId, callOptions = {}) {
      return job(
        "GET /status",
        await call("GET", jobPath("status", jobId), undefined, callOptions),
      );
    },
    async cancel(jobId, callOptions = {}) {
      return job(
        "POST /cancel",
        await call("POST", jobPath("cancel", jobId), undefined, callOptions),
      );
    },
    async health(callOptions = {}) {
      const value = await call("GET", "/health", undefined, callOptions);
      const parsed = healthSchema.safeParse(value);
      if (!parsed.success) {
        throw new RunPodApiError("protocol", `GET /health answered an unexpected body`);
      }
      const { jobs, workers } = parsed.data;
      return {
        jobs: {
          completed: jobs.completed ?? 0,
          failed: jobs.failed ?? 0,
          inProgress: jobs.inProgress ?? 0,
          inQueue: jobs.inQueue ?? 0,
          retried: jobs.retried ?? 0,
        },
        workers: {
          idle: workers.idle ?? 0,
          initializing: workers.initializing ?? 0,
          ready: workers.ready ?? 0,
          running: workers.running ?? 0,
          throttled: workers.throttled ?? 0,
          unhealthy: workers.unhealthy ?? 0,
        },
      };
    },
  };
}

function kindOfStatus(status: number): RunPodErrorKind {
  if (status === 401 || status === 403) return "unauthorized";
  if (status === 404) return "not-found";
  if (status === 429) return "rate-limited";
  if (status >= 500) return "server";
  return "bad-request";
}

/** Reads a body as text, refusing one larger than `maxBytes` before it is all in memory. */
async function readText(response: Response, maxBytes: number, operation: string): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge(operation, maxBytes, response.status);
  }
  if (!response.body) return "";
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge(operation, maxBytes, response.status);
    }
    parts.push(value);
  }
  return Buffer.concat(parts).toString("utf8");
}

function tooLarge(operation: string, maxBytes: number, status: number): RunPodApiError {
  return new RunPodApiError(
    "too-large",
    `${operation} answered more than ${maxBytes} bytes (max response bytes)`,
    status,
  );
}
