/**
 * AnalyzeAudio routed to backends, against a real gateway (public port on 127.0.0.1): a backend
 * that is the real engine host over a classifier engine (age and gender, like the Tinybox node's
 * /v1/audio/age and /v1/audio/gender) gives age and gender; the gateway's DSP gives the rest and
 * is the fallback for gender; age with no classifier is FAILED_PRECONDITION naming the capability.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, createServiceImplSpec } from "@connectrpc/connect";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { AnalysisKind } from "../../gen/voxgate/v1/analysis_pb.js";
import { BackendKind } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { VoiceGender } from "../../gen/voxgate/v1/capabilities_pb.js";
import { GPUBackendService } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { agentSettings } from "../../services/agent/agent-settings.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { settingDefaults } from "../../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../../services/engine-host/engine-host-handler.js";
import { createEngineHost, describeEngines } from "../../services/engine-host/index.js";
import type { EngineAnalyzeRequest, TtsEngine } from "../../services/engines/tts-engine.js";
import { createGateway, type Gateway } from "../../services/gateway/gateway.js";
import { createInProcessTransport } from "../../services/gateway/in-process-transport.js";
import { toneWav } from "./fake-clone-backend.js";

const TOKEN = "vxg_backend-analysis-test-token-00000000000000000000000";

let dataDir: string;
let gateway: Gateway;
let client: VoxgateClient;
const seen: EngineAnalyzeRequest[] = [];

/** A classifier engine: age 42 and male, whatever the audio (the DSP hears the 200 Hz tone as female); records what it got. */
function classifierEngine(): TtsEngine {
  return {
    info: {
      id: "voiceclf",
      version: "1",
      modelFamily: "voiceclf",
      modelSize: "",
      format: { sampleRateHz: 16_000, channels: 1 },
      voices: [],
      supportsSpeed: false,
      speaks: false,
      analysisKinds: ["gender", "age"],
    },
    // biome-ignore lint/correctness/useYield: never asked to speak
    async *synthesize() {
      throw new Error("does not speak");
    },
    async analyze(request) {
      seen.push(request);
      return {
        ageYears: 42,
        ageConfidence: 0.8,
        gender: "male",
        genderConfidence: 0.9,
        features: { clf_model: "fake" },
      };
    },
    async close() {},
  };
}

function addClassifier(): void {
  const engines = [classifierEngine()];
  const host = createEngineHost({
    ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
    engines,
    slots: 2,
  });
  const transport = createInProcessTransport({
    services: [createServiceImplSpec<typeof GPUBackendService>(GPUBackendService, host.handler)],
    interceptors: [],
  });
  gateway.registry.add(
    {
      id: "clf",
      kind: BackendKind.AGENT,
      client: createClient(GPUBackendService, transport),
      capabilities: describeEngines(engines, 2),
      priority: 0,
      version: "test",
      address: "in-process",
      labels: {},
    },
    "test",
  );
  gateway.registry.heartbeat("clf");
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "voxgate-analysis-"));
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [{ name: "tester", sha256: hashToken(TOKEN), scopes: ["tts", "voices"] }],
    limits: {
      maxTextChars: 5000,
      maxRequestBytes: 4 * 1024 * 1024,
      maxClipBytes: 16 * 1024 * 1024,
      defaultTimeoutMs: 60_000,
      maxTimeoutMs: 120_000,
    },
    storage: { dataDir, databaseUrl: "memory:" },
    log: pino({ level: "silent" }),
  });
  const { publicUrl } = await gateway.listen();
  client = createVoxgateClient({ baseUrl: publicUrl, token: TOKEN, timeoutMs: 60_000 });
}, 60_000);

afterAll(async () => {
  client?.close();
  await gateway?.close(500);
  await rm(dataDir, { recursive: true, force: true });
});

const wav = toneWav(1);
const analyze = (kinds: AnalysisKind[]) =>
  client.voices.analyzeAudio({ audio: { contentType: "audio/wav", data: wav }, kinds });

describe("AnalyzeAudio with no classifier connected", () => {
  it("refuses age with FAILED_PRECONDITION naming classify_speaker", async () => {
    const error = await analyze([AnalysisKind.AGE]).then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    expect(error?.code).toBe(Code.FailedPrecondition);
    expect(error?.rawMessage).toContain("classify_speaker");
  });

  it("answers gender from pitch on the gateway (the fallback)", async () => {
    const { analysis } = await analyze([AnalysisKind.GENDER, AnalysisKind.BASIC]);
    expect(analysis?.gender).toBe(VoiceGender.FEMALE); // a 200 Hz tone
    expect(analysis?.ageYears).toBeUndefined();
    expect(Number(analysis?.durationMs)).toBe(1000);
  });
});

describe("AnalyzeAudio with a classifier backend", () => {
  beforeAll(() => addClassifier());

  it("takes age and gender from the classifier and the rest from the gateway's DSP", async () => {
    const before = seen.length;
    const { analysis } = await analyze([]);
    expect(analysis?.ageYears).toBe(42);
    expect(analysis?.ageConfidence).toBeCloseTo(0.8);
    expect(analysis?.gender).toBe(VoiceGender.MALE);
    expect(analysis?.genderConfidence).toBeCloseTo(0.9);
    expect(Number(analysis?.durationMs)).toBe(1000);
    expect(analysis?.loudnessLufs).toBeDefined();
    expect(analysis?.analyzer).toContain("clf/voiceclf");
    expect(analysis?.features).toEqual({ clf_model: "fake" });
    // The backend got the very bytes the caller sent.
    expect(Buffer.from(seen[before]?.audio ?? []).equals(Buffer.from(wav))).toBe(true);
    expect(seen[before]?.contentType).toBe("audio/wav");
  });

  it("asks the classifier only for what was asked", async () => {
    const before = seen.length;
    const { analysis } = await analyze([AnalysisKind.AGE]);
    expect(analysis?.ageYears).toBe(42);
    expect(seen[before]?.kinds).toEqual(["age"]);
    await analyze([AnalysisKind.BASIC]);
    expect(seen.length).toBe(before + 1);
  });
});
