/**
 * VoiceService rules against a real gateway (public port on 127.0.0.1, filesystem store in a temp
 * dir, in-memory PGlite) with a fake cloning backend behind the real backend contract. Bad input
 * must be refused with the exact code and leave nothing behind: no voice row, no blob, no call to
 * a backend.
 */
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../clients/cli/main.js";
import { createTestIo } from "../../clients/testing/test-io.js";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { VoiceType } from "../../gen/voxgate/v1/voice_pb.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { createGateway, type Gateway } from "../../services/gateway/gateway.js";
import {
  createFakeCloneBackend,
  type FakeCloneBackend,
  forgedLongWav,
  toneWav,
} from "./fake-clone-backend.js";

const TOKEN = "vxg_voice-service-test-token-000000000000000000000000";
const MAX_REFERENCE_BYTES = 256 * 1024;

let dataDir: string;
let gateway: Gateway;
let client: VoxgateClient;
let backend: FakeCloneBackend;
let publicUrl: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "voxgate-voices-"));
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [{ name: "tester", sha256: hashToken(TOKEN), scopes: ["tts", "voices"] }],
    limits: {
      maxTextChars: 5000,
      maxRequestBytes: 4 * 1024 * 1024,
      maxClipBytes: 16 * 1024 * 1024,
      defaultTimeoutMs: 120_000,
      maxTimeoutMs: 300_000,
      maxReferenceBytes: MAX_REFERENCE_BYTES,
      maxReferenceSeconds: 5,
    },
    storage: { dataDir, databaseUrl: "memory:" },
    log: pino({ level: "silent" }),
  });
  ({ publicUrl } = await gateway.listen());
  backend = createFakeCloneBackend({ id: "cloner" });
  gateway.registry.add(backend.registration, "test");
  gateway.registry.heartbeat("cloner");
  client = createVoxgateClient({ baseUrl: publicUrl, token: TOKEN, timeoutMs: 120_000 });
}, 60_000);

afterAll(async () => {
  client?.close();
  await gateway?.close(500);
  await rm(dataDir, { recursive: true, force: true });
});

async function codeOf(call: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await call;
  } catch (err) {
    const error = ConnectError.from(err);
    return { code: error.code, message: error.rawMessage };
  }
  throw new Error("expected the call to fail");
}

/** Files under the store's directory (blobs and metadata), relative paths. */
async function storedFiles(): Promise<string[]> {
  try {
    const entries = await readdir(join(dataDir, "blobs"), { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  } catch {
    return [];
  }
}

async function clonedVoices() {
  return (await client.voices.listVoices({ type: VoiceType.CLONED })).voices;
}

describe("refused input leaves nothing behind", () => {
  it("refuses a PNG labelled as WAV with INVALID_ARGUMENT", async () => {
    const png = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      Buffer.alloc(2048, 7),
    ]);
    const refused = await codeOf(client.voices.createVoice({ name: "png", referenceAudio: png }));
    expect(refused.code).toBe(Code.InvalidArgument);
    expect(refused.message).toMatch(/WAV, MP3, FLAC or OGG/);
    const labelled = await codeOf(
      client.voices.analyzeAudio({ audio: { contentType: "audio/wav", data: png } }),
    );
    expect(labelled.code).toBe(Code.InvalidArgument);
    expect(backend.cloneCalls).toHaveLength(0);
    expect(await storedFiles()).toEqual([]);
    expect(await clonedVoices()).toEqual([]);
  });

  it("refuses an oversized upload naming VOXGATE_MAX_REFERENCE_BYTES", async () => {
    const big = toneWav(MAX_REFERENCE_BYTES / 32_000 + 1);
    expect(big.byteLength).toBeGreaterThan(MAX_REFERENCE_BYTES);
    const refused = await codeOf(client.voices.createVoice({ name: "big", referenceAudio: big }));
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.message).toContain("VOXGATE_MAX_REFERENCE_BYTES");
    expect(backend.cloneCalls).toHaveLength(0);
    expect(await storedFiles()).toEqual([]);
    expect(await clonedVoices()).toEqual([]);
  });

  it("refuses a 10-hour WAV header naming VOXGATE_MAX_REFERENCE_SECONDS", async () => {
    const refused = await codeOf(
      client.voices.createVoice({ name: "long", referenceAudio: forgedLongWav(10) }),
    );
    expect(refused.code).toBe(Code.InvalidArgument);
    expect(refused.message).toContain("VOXGATE_MAX_REFERENCE_SECONDS");
    expect(backend.cloneCalls).toHaveLength(0);
    expect(await storedFiles()).toEqual([]);
    expect(await clonedVoices()).toEqual([]);
  });

  it.each(["../../etc/passwd", "vc_../../etc/passwd", "..", "a/../../b"])(
    "refuses the id %j for GetVoice, DeleteVoice, AnalyzeVoice and prompt_id",
    async (id) => {
      for (const call of [
        client.voices.getVoice({ voiceId: id }),
        client.voices.deleteVoice({ voiceId: id }),
        client.voices.analyzeVoice({ voiceId: id }),
        client.tts.synthesize({ text: "Hello.", promptId: id }),
      ]) {
        const refused = await codeOf(call);
        expect([Code.InvalidArgument, Code.NotFound]).toContain(refused.code);
      }
      expect(backend.synthesizeCalls).toHaveLength(0);
      expect(await storedFiles()).toEqual([]);
    },
  );

  it("answers NOT_FOUND for a well-formed unknown voice and prompt, dispatching nothing", async () => {
    const ghost = "vc_aaaaaaaaaaaaaaaaaaaa";
    expect((await codeOf(client.voices.getVoice({ voiceId: ghost }))).code).toBe(Code.NotFound);
    expect((await codeOf(client.voices.deleteVoice({ voiceId: ghost }))).code).toBe(Code.NotFound);
    expect((await codeOf(client.tts.synthesize({ text: "Hi.", voice: ghost }))).code).toBe(
      Code.NotFound,
    );
    expect(
      (await codeOf(client.tts.synthesize({ text: "Hi.", promptId: "a".repeat(64) }))).code,
    ).toBe(Code.NotFound);
    expect(backend.synthesizeCalls).toHaveLength(0);
  });

  it("refuses to delete an engine preset with FAILED_PRECONDITION", async () => {
    const refused = await codeOf(client.voices.deleteVoice({ voiceId: "fake-preset" }));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect((await client.voices.getVoice({ voiceId: "fake-preset" })).voice?.type).toBe(
      VoiceType.PRESET,
    );
  });
});

describe("cloned voices", () => {
  it("clones, lists, speaks, analyzes and deletes a voice", async () => {
    const reference = toneWav(1.5, 180);
    const { voice } = await client.voices.createVoice({
      name: "Narrator",
      referenceAudio: reference,
      referenceText: "A tone.",
      language: "en-GB",
      labels: { project: "demo" },
      requestId: "req-1",
    });
    expect(voice?.id).toMatch(/^vc_[a-z2-7]{20}$/);
    expect(voice?.type).toBe(VoiceType.CLONED);
    expect(voice?.model).toMatchObject({ family: "fake-clone", size: "1" });
    expect(voice?.promptDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(backend.cloneCalls.at(-1)).toMatchObject({
      contentType: "audio/wav",
      referenceBytes: reference.byteLength,
    });
    const id = voice?.id ?? "";

    // The same request id from the same caller answers with the same voice, cloning nothing new.
    const again = await client.voices.createVoice({
      name: "Narrator",
      referenceAudio: reference,
      requestId: "req-1",
    });
    expect(again.voice?.id).toBe(id);
    expect(backend.cloneCalls).toHaveLength(1);

    const listed = await client.voices.listVoices({});
    expect(listed.voices.map((v) => [v.id, v.type])).toEqual([
      ["fake-preset", VoiceType.PRESET],
      [id, VoiceType.CLONED],
    ]);
    expect((await client.voices.listVoices({ language: "en-gb" })).voices.map((v) => v.id)).toEqual(
      [id],
    );
    const first = await client.voices.listVoices({ pageSize: 1 });
    expect(first.voices.map((v) => v.id)).toEqual(["fake-preset"]);
    const second = await client.voices.listVoices({ pageSize: 1, pageToken: first.nextPageToken });
    expect(second.voices.map((v) => v.id)).toEqual([id]);
    expect(second.nextPageToken).toBe("");

    // Speaking it sends the prompt by digest and model, never a URL.
    await client.tts.synthesize({ text: "Hello there.", voice: id });
    const sent = backend.synthesizeCalls.at(-1)?.voice?.kind;
    expect(sent?.case).toBe("clonePrompt");
    if (sent?.case === "clonePrompt") {
      expect(sent.value.digest).toBe(voice?.promptDigest);
      expect(sent.value.url).toBe("");
      expect(sent.value.model).toMatchObject({ family: "fake-clone", size: "1" });
    }
    await client.tts.synthesize({ text: "By digest.", promptId: voice?.promptDigest ?? "" });
    expect(backend.synthesizeCalls).toHaveLength(2);

    const analyzed = await client.voices.analyzeVoice({ voiceId: id });
    expect(analyzed.voice?.analysis?.durationMs).toBe(1500n);
    expect(analyzed.voice?.analysis?.medianF0Hz).toBeGreaterThan(170);
    expect(analyzed.voice?.analysis?.medianF0Hz).toBeLessThan(190);
    expect((await client.voices.getVoice({ voiceId: id })).voice?.analysis?.durationMs).toBe(1500n);

    // The prompt cannot go behind the voice's back.
    const inUse = await codeOf(client.prompts.deletePrompt({ digest: voice?.promptDigest ?? "" }));
    expect(inUse.code).toBe(Code.FailedPrecondition);
    expect(inUse.message).toContain(id);

    await client.voices.deleteVoice({ voiceId: id });
    expect((await codeOf(client.voices.getVoice({ voiceId: id }))).code).toBe(Code.NotFound);
    expect(await clonedVoices()).toEqual([]);
    // Prompt and reference went with the only voice that used them.
    expect(await storedFiles()).toEqual([]);
  }, 120_000);

  it("refuses cloned voices on a backend whose model did not make the prompt", async () => {
    const { voice } = await client.voices.createVoice({
      name: "Picky",
      referenceAudio: toneWav(1, 220),
    });
    gateway.registry.remove("cloner", "test: only the other model stays");
    const other = createFakeCloneBackend({
      id: "other",
      model: { family: "fake-clone", size: "2" },
    });
    gateway.registry.add(other.registration, "test");
    gateway.registry.heartbeat("other");
    try {
      const refused = await codeOf(client.tts.synthesize({ text: "Hi.", voice: voice?.id ?? "" }));
      expect(refused.code).toBe(Code.FailedPrecondition);
      expect(other.synthesizeCalls).toHaveLength(0);
    } finally {
      gateway.registry.remove("other", "test");
      gateway.registry.add(backend.registration, "test");
      gateway.registry.heartbeat("cloner");
    }
  });

  it("speaks a cloned voice through the OpenAI-compatible API", async () => {
    const { voice } = await client.voices.createVoice({ name: "Open", referenceAudio: toneWav(1) });
    const before = backend.synthesizeCalls.length;
    const res = await fetch(`${publicUrl}/v1/audio/speech`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "tts-1",
        voice: voice?.id,
        input: "Hi.",
        response_format: "wav",
      }),
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const sent = backend.synthesizeCalls[before]?.voice?.kind;
    expect(sent?.case === "clonePrompt" ? sent.value.digest : "").toBe(voice?.promptDigest);
  }, 60_000);

  it("creates, lists and deletes a cloned voice with the CLI", async () => {
    const file = join(dataDir, "ref.wav");
    await writeFile(file, toneWav(1, 240));
    const env = { VOXGATE_URL: publicUrl, VOXGATE_TOKEN: TOKEN };
    const created = createTestIo({ env });
    expect(
      await main(["voices", "create", "--name", "Cli voice", "--audio", file], created.io),
    ).toBe(0);
    const id = created.stdout().trim();
    expect(id).toMatch(/^vc_[a-z2-7]{20}$/);
    const listed = createTestIo({ env });
    expect(await main(["voices"], listed.io)).toBe(0);
    expect(listed.stdout()).toMatch(new RegExp(`${id}\\s+Cli voice\\s+cloned`));
    const deleted = createTestIo({ env });
    expect(await main(["voices", "delete", id], deleted.io)).toBe(0);
    expect((await codeOf(client.voices.getVoice({ voiceId: id }))).code).toBe(Code.NotFound);
    const preset = createTestIo({ env });
    expect(await main(["voices", "delete", "fake-preset"], preset.io)).toBe(1);
    expect(preset.stderr()).toMatch(/preset/);
  }, 60_000);

  it("analyzes uploaded audio with the same caps", async () => {
    const { analysis } = await client.voices.analyzeAudio({
      audio: { contentType: "audio/wav", data: toneWav(1, 200) },
    });
    expect(analysis?.durationMs).toBe(1000n);
    const refused = await codeOf(
      client.voices.analyzeAudio({ audio: { contentType: "audio/wav", data: forgedLongWav(10) } }),
    );
    expect(refused.code).toBe(Code.InvalidArgument);
    expect(refused.message).toContain("VOXGATE_MAX_REFERENCE_SECONDS");
  });
});
