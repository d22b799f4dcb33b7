/**
 * The serverless backend from a real `voxgate gateway` process: declared in VOXGATE_BACKENDS_JSON,
 * its key taken from the variable `apiKeyEnv` names, pointing at the RunPod emulator in this
 * process (whose worker runs the real CPU engine). Also: a missing key stops the gateway at start
 * with a clear message, and the key never shows in the logs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient } from "../../clients/voxgate-client.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { WAV_HEADER_BYTES } from "../../services/audio/wav.js";
import { createEspeakEngine, type TtsEngine } from "../../services/engines/index.js";
import { spawnVoxgate, waitFor } from "../helpers/voxgate-process.js";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";
import {
  createRunPodEmulator,
  createTtsWorkerHandler,
  type RunPodEmulator,
} from "../runpod-emulator/index.js";

const API_KEY = "rp_process-test-key-5d0b";
const KEY_ENV = "VOXGATE_E2E_RUNPOD_KEY";
const TEXT = "Spoken by a serverless worker, through a gateway process.";

let engine: TtsEngine;
let emulator: RunPodEmulator;
let endpointUrl = "";

beforeAll(async () => {
  engine = await createEspeakEngine();
  emulator = createRunPodEmulator({ apiKey: API_KEY, handler: createTtsWorkerHandler({ engine }) });
  endpointUrl = await emulator.listen();
}, 60_000);

afterAll(async () => {
  await emulator?.close();
  await engine?.close();
});

function backendsJson(): string {
  return JSON.stringify([
    {
      id: "runpod-e2e",
      kind: "runpod",
      endpoint: endpointUrl,
      apiKeyEnv: KEY_ENV,
      engines: [{ id: "espeak-ng", model: { family: "espeak-ng" }, features: ["synthesize"] }],
    },
  ]);
}

describe("voxgate gateway with a serverless backend", () => {
  let gateway: GatewayProcess | undefined;

  afterAll(async () => {
    await gateway?.proc.stop("SIGTERM");
  });

  it("serves a call on the serverless backend with no agent connected", async () => {
    gateway = await startGatewayProcess({
      env: { VOXGATE_BACKENDS_JSON: backendsJson(), [KEY_ENV]: API_KEY },
    });
    const voxgate = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
    try {
      await waitFor(
        async () => {
          const { backends } = await voxgate.backends.listBackends({});
          return backends.find((b) => b.id === "runpod-e2e")?.state === BackendState.READY;
        },
        { what: "runpod-e2e to be READY" },
      );
      const headers: Headers[] = [];
      const clip = await voxgate.tts.synthesize(
        { text: TEXT },
        { onHeader: (h) => headers.push(h) },
      );
      expect(headers[0]?.get("x-voxgate-backend")).toBe("runpod-e2e");
      const parts: Uint8Array[] = [];
      for await (const chunk of engine.synthesize(
        { text: TEXT, voiceId: "", speed: 1, instructions: "" },
        new AbortController().signal,
      )) {
        parts.push(chunk.pcm);
      }
      expect(Buffer.from(clip.data.subarray(WAV_HEADER_BYTES)).equals(Buffer.concat(parts))).toBe(
        true,
      );
      expect(emulator.jobs().at(-1)?.status).toBe("COMPLETED");
    } finally {
      voxgate.close();
    }
    const logs = JSON.stringify(gateway.proc.logs) + gateway.proc.stderr();
    expect(logs).toContain("runpod-e2e");
    expect(logs).not.toContain(API_KEY);
  }, 60_000);

  it("refuses to start when the variable apiKeyEnv names is not set", async () => {
    const proc = spawnVoxgate(["gateway"], {
      VOXGATE_PORT: "0",
      VOXGATE_AGENT_PORT: "0",
      VOXGATE_BACKENDS_JSON: backendsJson(),
    });
    const code = await proc.exited();
    expect(code).not.toBe(0);
    expect(proc.stderr()).toContain(
      `backend "runpod-e2e": environment variable ${KEY_ENV} (apiKeyEnv) is not set`,
    );
  }, 30_000);
});
