/**
 * The RunPod API client against the RunPod emulator, whose worker runs the real CPU engine:
 * every operation, the job states, and every way a call can fail.
 */
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createRunPodClient,
  decodeTtsJobOutput,
  isRunPodApiError,
  type RunPodApiError,
  type RunPodClient,
} from "../../services/backends/serverless/index.js";
import { createEspeakEngine, type TtsEngine } from "../../services/engines/index.js";
import {
  createRunPodEmulator,
  createTtsWorkerHandler,
  type RunPodEmulator,
} from "../runpod-emulator/index.js";

const API_KEY = "rp_test-key-4f1e9c";
const TEXT = "Hello from the serverless worker.";
const LONG_TEXT = Array.from({ length: 12 }, (_, i) => `Sentence number ${i + 1}.`).join(" ");

let engine: TtsEngine;
let emulator: RunPodEmulator;
let endpointUrl = "";
let client: RunPodClient;
const openServers: { server: Server; sockets: Set<Socket> }[] = [];

beforeAll(async () => {
  engine = await createEspeakEngine();
  emulator = createRunPodEmulator({
    apiKey: API_KEY,
    workers: 1,
    handler: createTtsWorkerHandler({ engine, chunkDelayMs: () => emulator.faults.chunkDelayMs }),
  });
  endpointUrl = await emulator.listen();
  client = createRunPodClient({ endpointUrl, apiKey: API_KEY, requestTimeoutMs: 5_000 });
}, 60_000);

afterAll(async () => {
  await emulator?.close();
  await engine?.close();
});

afterEach(async () => {
  emulator.faults.chunkDelayMs = 0;
  emulator.faults.startDelayMs = 0;
  emulator.faults.failNext = 0;
  emulator.faults.healthStatus = 200;
  await emulator.settled(10_000);
  for (const { server, sockets } of openServers.splice(0)) {
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, "close");
  }
});

async function pcmOf(text: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of engine.synthesize(
    { text, voiceId: "", speed: 1, instructions: "" },
    new AbortController().signal,
  )) {
    parts.push(chunk.pcm);
  }
  return Buffer.concat(parts);
}

function input(text: string) {
  return { text, voice: "", speed: 1, encoding: "pcm_s16le" };
}

async function failureOf(call: () => Promise<unknown>): Promise<RunPodApiError> {
  try {
    await call();
  } catch (err) {
    if (isRunPodApiError(err)) return err;
    throw err;
  }
  throw new Error("the call should have failed");
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("RunPod client against the emulator", () => {
  it("runs a job with /run and polls /status until its output carries the engine's PCM", async () => {
    const queued = await client.run(input(TEXT));
    expect(["IN_QUEUE", "IN_PROGRESS"]).toContain(queued.status);
    let job = queued;
    while (job.status === "IN_QUEUE" || job.status === "IN_PROGRESS") {
      await new Promise((resolve) => setTimeout(resolve, 20));
      job = await client.status(queued.id);
    }
    expect(job.status).toBe("COMPLETED");
    expect(job.id).toBe(queued.id);
    const audio = decodeTtsJobOutput(job.output, 16 * 1024 * 1024);
    expect(audio.sampleRateHz).toBe(engine.info.format.sampleRateHz);
    expect(audio.channels).toBe(1);
    expect(audio.engine).toBe("espeak-ng");
    expect(Buffer.from(audio.pcm).equals(await pcmOf(TEXT))).toBe(true);
    expect(emulator.jobs().at(-1)?.via).toBe("run");
  });

  it("answers /runsync with the finished job when it ends within the wait", async () => {
    const job = await client.runSync(input(TEXT), { waitMs: 10_000 });
    expect(job.status).toBe("COMPLETED");
    expect(job.executionTime).toBeGreaterThanOrEqual(0);
    const audio = decodeTtsJobOutput(job.output, 16 * 1024 * 1024);
    expect(Buffer.from(audio.pcm).equals(await pcmOf(TEXT))).toBe(true);
    const request = emulator.requests().at(-1);
    expect(request?.path).toBe("/v2/voxgate-test/runsync?wait=10000");
  });

  it("answers /runsync with IN_PROGRESS when the job outlasts the wait, and the job goes on", async () => {
    // 12 chunks × 1 s: the job outlasts the 1 s wait by far even when the machine is loaded.
    emulator.faults.chunkDelayMs = 1_000;
    const started = performance.now();
    const job = await client.runSync(input(LONG_TEXT), { waitMs: 1_000 });
    const waited = performance.now() - started;
    expect(job.status).toBe("IN_PROGRESS");
    expect(job.output).toBeUndefined();
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(8_000);
    const cancelled = await client.cancel(job.id);
    expect(cancelled.status).toBe("CANCELLED");
  });

  it("cancels a running job: CANCELLED, and the worker's signal fires", async () => {
    emulator.faults.chunkDelayMs = 200;
    const job = await client.run(input(LONG_TEXT));
    await waitFor(
      () => emulator.jobs().find((j) => j.id === job.id)?.status === "IN_PROGRESS",
      "the job to start",
    );
    const cancelled = await client.cancel(job.id);
    expect(cancelled).toMatchObject({ id: job.id, status: "CANCELLED" });
    const record = emulator.jobs().find((j) => j.id === job.id);
    expect(record?.handlerAborted).toBe(true);
    expect((await client.status(job.id)).status).toBe("CANCELLED");
    // Cancelling again changes nothing.
    expect((await client.cancel(job.id)).status).toBe("CANCELLED");
  });

  it("cancels a queued job before any worker starts it", async () => {
    emulator.faults.startDelayMs = 500;
    const job = await client.run(input(TEXT));
    expect(job.status).toBe("IN_QUEUE");
    expect((await client.cancel(job.id)).status).toBe("CANCELLED");
    await new Promise((resolve) => setTimeout(resolve, 600));
    const record = emulator.jobs().find((j) => j.id === job.id);
    expect(record?.status).toBe("CANCELLED");
    expect(record?.startedAt).toBeUndefined();
  });

  it("ends a job that runs over its policy's executionTimeout as TIMED_OUT", async () => {
    emulator.faults.chunkDelayMs = 300;
    const job = await client.run(input(LONG_TEXT), { policy: { executionTimeoutMs: 400 } });
    let status = job;
    await waitFor(
      () => emulator.jobs().find((j) => j.id === job.id)?.status === "TIMED_OUT",
      "TIMED_OUT",
    );
    status = await client.status(job.id);
    expect(status.status).toBe("TIMED_OUT");
    expect(status.error).toContain("400 ms");
  });

  it("reports FAILED with the worker's error text", async () => {
    emulator.faults.failNext = 1;
    emulator.faults.failMessage = "CUDA out of memory";
    const job = await client.runSync(input(TEXT), { waitMs: 5_000 });
    expect(job.status).toBe("FAILED");
    expect(job.error).toBe("CUDA out of memory");
  });

  it("reads /health: job and worker counts", async () => {
    const health = await client.health();
    expect(health.workers.idle + health.workers.running).toBe(1);
    expect(health.jobs.completed).toBeGreaterThanOrEqual(0);
    expect(health.jobs.inQueue).toBe(0);
    emulator.faults.healthStatus = 503;
    const error = await failureOf(() => client.health());
    expect(error.kind).toBe("server");
    expect(error.httpStatus).toBe(503);
  });

  it("fails with kind unauthorized on a wrong key, without the key in the message", async () => {
    const wrong = createRunPodClient({ endpointUrl, apiKey: "rp_wrong-key" });
    const before = emulator.jobs().length;
    const error = await failureOf(() => wrong.run(input(TEXT)));
    expect(error.kind).toBe("unauthorized");
    expect(error.httpStatus).toBe(401);
    expect(error.message).toContain("POST /run answered HTTP 401");
    expect(error.message).not.toContain("rp_wrong-key");
    expect(emulator.jobs().length).toBe(before);
  });

  it("fails with kind not-found for an unknown job, and refuses a malformed id before sending", async () => {
    expect((await failureOf(() => client.status("no-such-job"))).kind).toBe("not-found");
    const count = emulator.requests().length;
    expect((await failureOf(() => client.cancel("../health"))).kind).toBe("bad-request");
    expect(emulator.requests().length).toBe(count);
  });

  it("fails with kind timeout when the API does not answer in time, and aborted on the caller's signal", async () => {
    const sockets = new Set<Socket>();
    // Accepts connections and never answers.
    const silent = createServer((socket) => sockets.add(socket));
    openServers.push({ server: silent, sockets });
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    const address = silent.address() as { port: number };
    const stuck = createRunPodClient({
      endpointUrl: `http://127.0.0.1:${address.port}/v2/x`,
      apiKey: API_KEY,
      requestTimeoutMs: 200,
    });
    const started = performance.now();
    const timeout = await failureOf(() => stuck.health());
    expect(timeout.kind).toBe("timeout");
    // The 200 ms timeout ended it, not the silent server (which never answers): loose bound.
    expect(performance.now() - started).toBeLessThan(10_000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const aborted = await failureOf(() =>
      stuck.health({ signal: controller.signal, timeoutMs: 5_000 }),
    );
    expect(aborted.kind).toBe("aborted");
  });

  it("refuses a response larger than maxResponseBytes", async () => {
    const small = createRunPodClient({ endpointUrl, apiKey: API_KEY, maxResponseBytes: 2_000 });
    const job = await client.runSync(input(TEXT), { waitMs: 5_000 });
    expect(job.status).toBe("COMPLETED");
    const error = await failureOf(() => small.status(job.id));
    expect(error.kind).toBe("too-large");
  });
});
