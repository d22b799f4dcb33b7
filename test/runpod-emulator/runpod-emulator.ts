/**
 * A RunPod serverless endpoint emulator for tests: a real HTTP server on 127.0.0.1 speaking the
 * queue API (`/v2/<endpoint>/run`, `/runsync?wait=`, `/status/<job>`, `/cancel/<job>`, `/health`)
 * with bearer auth, a job queue served by N workers running a real handler, the job states
 * IN_QUEUE → IN_PROGRESS → COMPLETED | FAILED | CANCELLED | TIMED_OUT, and per-job
 * executionTimeout. It records every request and every job, so tests can assert that no remote
 * job was left running, and has fault knobs (cold-start delay, failing jobs, health errors).
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { WorkerHandler } from "./tts-worker.js";

/** A job status, as RunPod spells it. */
export type EmulatedJobStatus =
  | "IN_QUEUE"
  | "IN_PROGRESS"
  | "COMPLETED"
  | "FAILED"
  | "CANCELLED"
  | "TIMED_OUT";

/** One job as the emulator holds it. */
export interface EmulatedJob {
  /** Job id. */
  readonly id: string;
  /** How it was submitted. */
  readonly via: "run" | "runsync";
  /** Its input. */
  readonly input: unknown;
  /** Its executionTimeout, in ms (from its policy, or the emulator default). */
  readonly executionTimeoutMs: number;
  /** Where it is now. */
  status: EmulatedJobStatus;
  /** `performance.now()` at submission, start on a worker, end, and the first /cancel. */
  submittedAt: number;
  startedAt: number | undefined;
  endedAt: number | undefined;
  cancelRequestedAt: number | undefined;
  /** Whether the handler's signal fired (the worker was told to stop). */
  handlerAborted: boolean;
  /** Output once COMPLETED. */
  output: unknown;
  /** Error text once FAILED or TIMED_OUT. */
  error: string | undefined;
}

/** One HTTP request the emulator received. */
export interface EmulatorRequest {
  /** HTTP method. */
  method: string;
  /** Path and query. */
  path: string;
  /** `performance.now()` when it arrived. */
  at: number;
  /** HTTP status answered. */
  status: number;
}

/** Fault knobs; change them any time. */
export interface RunPodEmulatorFaults {
  /** Time a job stays IN_QUEUE before a free worker starts it (cold start), in ms. */
  startDelayMs: number;
  /** The next this many jobs fail on their worker with {@link failMessage}. */
  failNext: number;
  /** Error text of failed jobs. */
  failMessage: string;
  /** HTTP status `/health` answers (200 = healthy). */
  healthStatus: number;
  /** Extra wait per engine chunk in the worker, in ms (a slow worker); used by the handler. */
  chunkDelayMs: number;
}

/** Options of {@link createRunPodEmulator}. */
export interface RunPodEmulatorOptions {
  /** Accepted API key (as `Bearer <key>` or bare). */
  apiKey: string;
  /** The handler each worker runs. */
  handler: WorkerHandler;
  /** Endpoint id in the URL. @default "voxgate-test" */
  endpointId?: string;
  /** Workers; jobs beyond them wait IN_QUEUE. @default 1 */
  workers?: number;
  /** executionTimeout of jobs whose policy sets none, in ms. @default 600_000 */
  executionTimeoutMs?: number;
}

/** A running emulator. */
export interface RunPodEmulator {
  /** Fault knobs. */
  readonly faults: RunPodEmulatorFaults;
  /** Starts listening on 127.0.0.1:0; resolves with the endpoint base URL (`…/v2/<id>`). */
  listen(): Promise<string>;
  /** Every job, in submission order. */
  jobs(): readonly EmulatedJob[];
  /** Every request, in arrival order. */
  requests(): readonly EmulatorRequest[];
  /** Jobs not yet in a terminal state. */
  unfinished(): EmulatedJob[];
  /** Resolves when every job is terminal; rejects after `timeoutMs`. */
  settled(timeoutMs?: number): Promise<void>;
  /** Stops every job and closes the server. Idempotent. */
  close(): Promise<void>;
}

const TERMINAL = new Set<EmulatedJobStatus>(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);

/** Creates the emulator (not listening yet). */
export function createRunPodEmulator(options: RunPodEmulatorOptions): RunPodEmulator {
  const endpointId = options.endpointId ?? "voxgate-test";
  const workerCount = options.workers ?? 1;
  const defaultExecutionTimeoutMs = options.executionTimeoutMs ?? 600_000;
  const faults: RunPodEmulatorFaults = {
    startDelayMs: 0,
    failNext: 0,
    failMessage: "worker exploded",
    healthStatus: 200,
    chunkDelayMs: 0,
  };
  const jobs: EmulatedJob[] = [];
  const byId = new Map<string, EmulatedJob>();
  const requests: EmulatorRequest[] = [];
  const queue: EmulatedJob[] = [];
  const running = new Map<string, { abort: AbortController; timer: NodeJS.Timeout }>();
  const waiters = new Map<string, Set<() => void>>();
  let busy = 0;
  let endpointUrl = "";
  let closed = false;

  const finish = (job: EmulatedJob, status: EmulatedJobStatus, error?: string) => {
    if (TERMINAL.has(job.status)) return;
    job.status = status;
    job.endedAt = performance.now();
    if (error !== undefined) job.error = error;
    const run = running.get(job.id);
    if (run) {
      clearTimeout(run.timer);
      running.delete(job.id);
      if (status !== "COMPLETED" && status !== "FAILED") {
        job.handlerAborted = true;
        run.abort.abort(new Error(`job ${status}`));
      }
    }
    for (const wake of waiters.get(job.id) ?? []) wake();
    waiters.delete(job.id);
  };

  const pump = () => {
    while (!closed && busy < workerCount && queue.length > 0) {
      const job = queue.shift() as EmulatedJob;
      busy++;
      void work(job).finally(() => {
        busy--;
        pump();
      });
    }
  };

  const work = async (job: EmulatedJob) => {
    if (faults.startDelayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, faults.startDelayMs));
    }
    // Cancelled while waiting for its (cold) worker.
    if (TERMINAL.has(job.status)) return;
    job.status = "IN_PROGRESS";
    job.startedAt = performance.now();
    const abort = new AbortController();
    const timer = setTimeout(
      () => finish(job, "TIMED_OUT", `execution exceeded ${job.executionTimeoutMs} ms`),
      job.executionTimeoutMs,
    );
    running.set(job.id, { abort, timer });
    try {
      if (faults.failNext > 0) {
        faults.failNext--;
        throw new Error(faults.failMessage);
      }
      const output = await options.handler(job.input, abort.signal);
      if (!TERMINAL.has(job.status)) {
        job.output = output;
        finish(job, "COMPLETED");
      }
    } catch (err) {
      finish(job, "FAILED", (err as Error).message);
    }
  };

  const submit = (body: unknown, via: EmulatedJob["via"]): EmulatedJob | string => {
    if (!body || typeof body !== "object" || !("input" in body)) return "missing input";
    const { input, policy } = body as { input: unknown; policy?: { executionTimeout?: unknown } };
    const executionTimeoutMs =
      typeof policy?.executionTimeout === "number" && policy.executionTimeout > 0
        ? policy.executionTimeout
        : defaultExecutionTimeoutMs;
    const job: EmulatedJob = {
      id: `${via === "runsync" ? "sync-" : ""}${randomUUID()}`,
      via,
      input,
      executionTimeoutMs,
      status: "IN_QUEUE",
      submittedAt: performance.now(),
      startedAt: undefined,
      endedAt: undefined,
      cancelRequestedAt: undefined,
      handlerAborted: false,
      output: undefined,
      error: undefined,
    };
    jobs.push(job);
    byId.set(job.id, job);
    queue.push(job);
    // Workers pick jobs up after the submission is answered, as on RunPod: /run says IN_QUEUE.
    setImmediate(pump);
    return job;
  };

  const view = (job: EmulatedJob) => {
    const now = performance.now();
    const start = job.startedAt ?? job.endedAt ?? now;
    return {
      id: job.id,
      status: job.status,
      delayTime: Math.round(start - job.submittedAt),
      ...(job.startedAt !== undefined
        ? { executionTime: Math.round((job.endedAt ?? now) - job.startedAt) }
        : {}),
      ...(job.status === "COMPLETED" ? { output: job.output } : {}),
      ...(job.error !== undefined ? { error: job.error } : {}),
    };
  };

  const waitTerminal = (job: EmulatedJob, ms: number, res: ServerResponse) =>
    new Promise<void>((resolve) => {
      if (TERMINAL.has(job.status)) return resolve();
      const set = waiters.get(job.id) ?? new Set();
      waiters.set(job.id, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      res.once("close", done);
    });

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { error: (err as Error).message });
    });
  });

  const record = (req: IncomingMessage, at: number, res: ServerResponse) => {
    const entry: EmulatorRequest = { method: req.method ?? "", path: req.url ?? "", at, status: 0 };
    requests.push(entry);
    res.once("finish", () => {
      entry.status = res.statusCode;
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const at = performance.now();
    record(req, at, res);
    const url = new URL(req.url ?? "/", "http://emulator");
    const match = /^\/v2\/([^/]+)\/(run|runsync|status|cancel|health)(?:\/([^/]+))?$/.exec(
      url.pathname,
    );
    const body = await readBody(req);
    const auth = req.headers.authorization ?? "";
    if (auth !== `Bearer ${options.apiKey}` && auth !== options.apiKey) {
      return send(res, 401, "Unauthorized", "text/plain");
    }
    if (!match || match[1] !== endpointId) return send(res, 404, { error: "not found" });
    const [, , operation, jobId] = match;
    const method = req.method ?? "";
    switch (operation) {
      case "run":
      case "runsync": {
        if (method !== "POST" || jobId) return send(res, 405, { error: "method not allowed" });
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          return send(res, 400, { error: "body is not JSON" });
        }
        const job = submit(parsed, operation);
        if (typeof job === "string") return send(res, 400, { error: job });
        if (operation === "run") return send(res, 200, { id: job.id, status: job.status });
        const asked = Number(url.searchParams.get("wait") ?? 90_000);
        const waitMs = Math.min(300_000, Math.max(1_000, Number.isFinite(asked) ? asked : 90_000));
        await waitTerminal(job, waitMs, res);
        return send(res, 200, view(job));
      }
      case "status":
      case "cancel": {
        const job = jobId ? byId.get(jobId) : undefined;
        if (!job) return send(res, 404, { error: `job ${jobId ?? ""} not found` });
        if (operation === "status") {
          if (method !== "GET" && method !== "POST") return send(res, 405, {});
          return send(res, 200, view(job));
        }
        if (method !== "POST") return send(res, 405, { error: "method not allowed" });
        job.cancelRequestedAt ??= at;
        if (!TERMINAL.has(job.status)) {
          const index = queue.indexOf(job);
          if (index >= 0) queue.splice(index, 1);
          finish(job, "CANCELLED");
        }
        return send(res, 200, { id: job.id, status: job.status });
      }
      default: {
        if (method !== "GET") return send(res, 405, { error: "method not allowed" });
        if (faults.healthStatus !== 200) {
          return send(res, faults.healthStatus, { error: "health unavailable" });
        }
        const count = (status: EmulatedJobStatus) => jobs.filter((j) => j.status === status).length;
        return send(res, 200, {
          jobs: {
            completed: count("COMPLETED"),
            failed: count("FAILED"),
            inProgress: count("IN_PROGRESS"),
            inQueue: count("IN_QUEUE"),
            retried: 0,
          },
          workers: {
            idle: workerCount - busy,
            initializing: 0,
            ready: workerCount - busy,
            running: busy,
            throttled: 0,
            unhealthy: 0,
          },
        });
      }
    }
  }

  let closing: Promise<void> | undefined;
  return {
    faults,
    async listen() {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      const { port } = server.address() as AddressInfo;
      endpointUrl = `http://127.0.0.1:${port}/v2/${endpointId}`;
      return endpointUrl;
    },
    jobs: () => jobs,
    requests: () => requests,
    unfinished: () => jobs.filter((j) => !TERMINAL.has(j.status)),
    async settled(timeoutMs = 5_000) {
      const deadline = performance.now() + timeoutMs;
      while (jobs.some((j) => !TERMINAL.has(j.status))) {
        if (performance.now() > deadline) {
          const left = jobs
            .filter((j) => !TERMINAL.has(j.status))
            .map((j) => `${j.id}:${j.status}`);
          throw new Error(`jobs still unfinished after ${timeoutMs} ms: ${left.join(", ")}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    close() {
      closing ??= (async () => {
        closed = true;
        queue.length = 0;
        for (const job of jobs) finish(job, "CANCELLED", "emulator closed");
        server.closeAllConnections();
        if (server.listening) {
          server.close();
          await once(server, "close");
        }
      })();
      return closing;
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown, type = "application/json") {
  if (res.destroyed) return;
  const text = type === "application/json" ? JSON.stringify(body) : String(body);
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString("utf8");
}
