/**
 * Voice cloning end to end with real agent processes and the real espeak-ng engine: a voice cloned
 * through agent A is spoken by agent B, which has never seen the prompt. B gets the prompt bytes
 * over its own call stream (a cache miss), and serves the next call from its on-disk cache (a hit:
 * proven by deleting the prompt from the gateway's store in between). The cloned voice must sound
 * different from the default (its median f0 follows the reference's).
 *
 * Runs against the three object stores: the filesystem store under a real gateway process, S3
 * (s3rver behind a proxy that refuses unsigned reads: the old 403 condition) under a real gateway
 * process, and GCS (the JSON-API emulator) under an in-process gateway. Agents hold no storage
 * credentials in any of them: bytes flow over the agent link.
 */
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { AnalysisKind } from "../../gen/voxgate/v1/analysis_pb.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { VoiceType } from "../../gen/voxgate/v1/voice_pb.js";
import { generateToken, hashToken } from "../../services/auth/token-codec.js";
import { createGateway, type Gateway } from "../../services/gateway/gateway.js";
import { createGcsBlobStore } from "../../services/object-store/gcs-blob-store.js";
import { promptBlobKey } from "../../services/prompt-store/prompt-keys.js";
import { type GcsEmulator, startGcsEmulator } from "../gcs-emulator/index.js";
import { type S3rverServer, startS3rverServer } from "../helpers/s3rver-server.js";
import { type VoxgateProcess, waitFor } from "../helpers/voxgate-process.js";
import { startAgentProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";

const REFERENCE_TEXT =
  "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore. " +
  "How much wood would a woodchuck chuck if a woodchuck could chuck wood?";
const TEST_TEXT = "Peter Piper picked a peck of pickled peppers. A proper copper coffee pot.";

/** A running system: a gateway (process or in process), two agents, a client. */
interface CloneStack {
  client: VoxgateClient;
  agents: Record<"a" | "b", { proc: VoxgateProcess; cacheDir: string }>;
  /** Deletes the prompt with `digest` from the gateway's object store; false when it was not there. */
  deletePrompt(digest: string): Promise<boolean>;
  /** HTTP status of an unsigned GET of the prompt straight from the bucket (S3 and GCS). */
  anonymousRead: ((digest: string) => Promise<number>) | undefined;
  /** The gateway process, when the gateway is one. */
  gatewayProc: VoxgateProcess | undefined;
  close(): Promise<void>;
}

type StoreKind = "filesystem" | "s3" | "gcs";

async function startCloneStack(kind: StoreKind): Promise<CloneStack> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const dataDir = mkdtempSync(join(tmpdir(), "voxgate-clone-e2e-"));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  let gatewayProc: VoxgateProcess | undefined;
  let gateway: Gateway | undefined;
  let url: string;
  let agentPort: number;
  let clientToken: string;
  let agentToken: string;
  let deletePrompt: (digest: string) => Promise<boolean>;
  let bucketUrl: string | undefined;

  if (kind === "gcs") {
    const gcs = await startGcsFixture();
    cleanups.push(() => gcs.stop());
    clientToken = generateToken();
    agentToken = generateToken();
    gateway = createGateway({
      public: { host: "127.0.0.1", port: 0 },
      agent: { host: "127.0.0.1", port: 0 },
      tokens: [
        { name: "client", sha256: hashToken(clientToken), scopes: ["tts", "voices", "admin"] },
        { name: "agents", sha256: hashToken(agentToken), scopes: ["agent"] },
      ],
      limits: {
        maxTextChars: 5000,
        maxRequestBytes: 16 * 1024 * 1024,
        maxClipBytes: 64 * 1024 * 1024,
        defaultTimeoutMs: 120_000,
        maxTimeoutMs: 300_000,
      },
      storage: {
        dataDir,
        databaseUrl: "memory:",
        blobStore: { store: gcs.store, frontend: undefined },
      },
      log: pino({ level: "silent" }),
    });
    const addresses = await gateway.listen();
    cleanups.unshift(() => gateway?.close(1000) ?? Promise.resolve());
    url = addresses.publicUrl;
    agentPort = addresses.agentPort;
    deletePrompt = async (digest) => {
      return gcs.store.delete(promptBlobKey(digest));
    };
    bucketUrl = `${gcs.emulator.url}/voxgate-e2e`;
  } else {
    let env: Record<string, string> = { VOXGATE_DATA_DIR: dataDir };
    let s3: S3rverServer | undefined;
    if (kind === "s3") {
      s3 = await startS3rverServer();
      cleanups.push(() => s3?.stop() ?? Promise.resolve());
      env = {
        ...env,
        VOXGATE_STORE: "s3",
        VOXGATE_S3_BUCKET: s3.bucket,
        VOXGATE_S3_ENDPOINT: s3.endpoint,
        VOXGATE_S3_FORCE_PATH_STYLE: "true",
        VOXGATE_S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
        VOXGATE_S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
      };
    }
    if (s3) bucketUrl = `${s3.endpoint}/${s3.bucket}`;
    const started = await startGatewayProcess({ env });
    gatewayProc = started.proc;
    cleanups.unshift(() => started.proc.stop());
    ({ url, agentPort, clientToken, agentToken } = started);
    deletePrompt = async (digest) => {
      if (kind === "filesystem") {
        const file = join(dataDir, "blobs", "data", ...promptBlobKey(digest).split("/"));
        if (!existsSync(file)) return false;
        rmSync(file);
        return true;
      }
      const { createS3BlobStore } = await import("../../services/object-store/s3-blob-store.js");
      const store = createS3BlobStore({
        bucket: s3?.bucket ?? "",
        endpoint: s3?.endpoint ?? "",
        forcePathStyle: true,
        ...(s3 ? { credentials: s3.credentials } : {}),
      });
      const deleted = await store.delete(promptBlobKey(digest));
      await store.close();
      return deleted;
    };
  }

  const agents = {} as CloneStack["agents"];
  for (const [name, priority] of [
    ["a", "0"],
    ["b", "5"],
  ] as const) {
    const cacheDir = mkdtempSync(join(tmpdir(), `voxgate-clone-cache-${name}-`));
    cleanups.push(() => rm(cacheDir, { recursive: true, force: true }));
    const agent = startAgentProcess(
      { agentPort, agentToken, ...(gatewayProc ? { proc: gatewayProc } : {}) },
      `agent-${name}`,
      {
        VOXGATE_AGENT_PRIORITY: priority,
        VOXGATE_AGENT_SLOTS: "1",
        VOXGATE_AGENT_PROMPT_CACHE_DIR: cacheDir,
      },
    );
    cleanups.unshift(() => agent.proc.stop("SIGKILL"));
    agents[name] = { proc: agent.proc, cacheDir };
  }
  await Promise.all(
    Object.values(agents).map(({ proc }) =>
      proc.waitForLog((l) => l.msg === "connected to gateway", 60_000),
    ),
  );
  const client = createVoxgateClient({ baseUrl: url, token: clientToken, timeoutMs: 120_000 });
  cleanups.unshift(async () => client.close());
  await waitFor(
    async () => {
      const { backends } = await client.backends.listBackends({});
      return backends.filter((b) => b.state === BackendState.READY).length === 2;
    },
    { timeoutMs: 60_000, what: "both agents READY" },
  );
  return {
    client,
    agents,
    deletePrompt,
    anonymousRead: bucketUrl
      ? async (digest) => {
          const res = await fetch(`${bucketUrl}/${promptBlobKey(digest)}`);
          await res.arrayBuffer();
          return res.status;
        }
      : undefined,
    gatewayProc,
    async close() {
      for (const cleanup of cleanups) await cleanup().catch(() => {});
    },
  };
}

async function startGcsFixture() {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const clientEmail = "voxgate-e2e@voxgate-test.iam.gserviceaccount.com";
  const emulator: GcsEmulator = await startGcsEmulator({
    buckets: ["voxgate-e2e"],
    serviceAccount: { clientEmail, publicKeyPem: publicKey },
  });
  const store = createGcsBlobStore({
    bucket: "voxgate-e2e",
    prefix: "",
    projectId: "voxgate-test",
    apiEndpoint: emulator.url,
    credentials: { client_email: clientEmail, private_key: privateKey },
    universeDomain: "localhost",
  });
  return { store, emulator, stop: () => emulator.stop() };
}

/** The same samples labelled with a higher rate: plays higher and faster, like a sped-up tape. */
function relabelRate(wav: Uint8Array, factor: number): Uint8Array {
  const copy = Buffer.from(wav);
  const rate = copy.readUInt32LE(24);
  const blockAlign = copy.readUInt16LE(32);
  copy.writeUInt32LE(Math.round(rate * factor), 24);
  copy.writeUInt32LE(Math.round(rate * factor) * blockAlign, 28);
  return copy;
}

async function speak(client: VoxgateClient, voice: string) {
  let backend = "";
  const clip = await client.tts.synthesize(
    { text: TEST_TEXT, voice },
    { onHeader: (h) => (backend = h.get("x-voxgate-backend") ?? "") },
  );
  return { wav: clip.data, backend };
}

async function medianF0(client: VoxgateClient, wav: Uint8Array): Promise<number> {
  const { analysis } = await client.voices.analyzeAudio({
    audio: { contentType: "audio/wav", data: wav },
    kinds: [AnalysisKind.PITCH],
  });
  const f0 = analysis?.medianF0Hz;
  if (f0 === undefined) throw new Error("no pitch in the audio");
  return f0;
}

const cached = (dir: string) => readdirSync(dir).filter((name) => /^[0-9a-f]{64}$/.test(name));

describe.each<StoreKind>(["filesystem", "s3", "gcs"])("cloning with the %s store", (kind) => {
  let stack: CloneStack;

  beforeAll(async () => {
    stack = await startCloneStack(kind);
  }, 180_000);

  afterAll(async () => {
    await stack?.close();
  }, 60_000);

  it("clones through agent A, speaks through agent B (miss, then hit), and sounds different", async () => {
    const { client, agents } = stack;
    const plain = await speak(client, "");
    expect(plain.backend).toBe("agent-a");
    const reference = await client.tts.synthesize({ text: REFERENCE_TEXT });

    const { voice } = await client.voices.createVoice({
      name: `High narrator (${kind})`,
      referenceAudio: relabelRate(reference.data, 1.7),
      referenceText: REFERENCE_TEXT,
      language: "en-us",
    });
    expect(voice?.type).toBe(VoiceType.CLONED);
    expect(voice?.model?.family).toBe("espeak-ng");
    const digest = voice?.promptDigest ?? "";
    if (stack.gatewayProc) {
      const cloned = await stack.gatewayProc.waitForLog((l) => l.msg === "voice cloned");
      expect(cloned.backend).toBe("agent-a");
    }

    // Take A away: B is the only backend left, and has never seen the prompt.
    expect(await agents.a.proc.stop()).toBe(0);
    await waitFor(
      async () => {
        const { backends } = await client.backends.listBackends({});
        return !backends.some((b) => b.id === "agent-a");
      },
      { timeoutMs: 30_000, what: "agent A gone" },
    );
    expect(cached(agents.b.cacheDir)).toEqual([]);

    const first = await speak(client, voice?.id ?? "");
    expect(first.backend).toBe("agent-b");
    // The miss: B fetched the bytes over its stream and kept them.
    await waitFor(() => cached(agents.b.cacheDir).includes(digest), {
      timeoutMs: 10_000,
      what: "prompt in B's cache",
    });

    // The old 403: the bucket refuses unsigned reads, and agents never needed one.
    if (stack.anonymousRead) expect([401, 403]).toContain(await stack.anonymousRead(digest));

    // The hit: with the prompt gone from the gateway's store, only B's cache can serve it.
    expect(await stack.deletePrompt(digest)).toBe(true);
    const second = await speak(client, voice?.id ?? "");
    expect(second.backend).toBe("agent-b");

    const plainF0 = await medianF0(client, plain.wav);
    const clonedF0 = await medianF0(client, first.wav);
    expect(clonedF0 / plainF0).toBeGreaterThan(1.25);
    // The cached prompt is the same voice.
    expect((await medianF0(client, second.wav)) / plainF0).toBeGreaterThan(1.25);
    console.log(
      `[figures] ${kind}: default f0 ${plainF0.toFixed(1)} Hz, cloned f0 ${clonedF0.toFixed(1)} Hz`,
    );
  }, 240_000);
});
