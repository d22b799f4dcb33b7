/**
 * Tenant isolation of cloned voices and prompts (issue 20, OWASP API1) on a real gateway (public
 * port on 127.0.0.1, in-memory PGlite, filesystem store) with a fake cloning backend. Before
 * tenants, any `voices` token read another token's voice (transcript included), spoke with it by
 * id and by prompt digest, downloaded its prompt and deleted it. The matrix runs every such call
 * from a token of another tenant over Connect, gRPC, gRPC-Web, REST and the OpenAI routes and
 * expects NOT_FOUND (404) each time with nothing changed; then the same-tenant, admin and shared
 * cases.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createVoxgateClient,
  type VoxgateClient,
  type VoxgateProtocol,
} from "../../clients/voxgate-client.js";
import type { Voice } from "../../gen/voxgate/v1/voice_pb.js";
import { VoiceType } from "../../gen/voxgate/v1/voice_pb.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { createGateway, type Gateway } from "../../services/gateway/gateway.js";
import { createFakeCloneBackend, type FakeCloneBackend, toneWav } from "./fake-clone-backend.js";

const ALICE = "vxg_tenant-alice-000000000000000000000000000000000000000";
const ALICE_TWO = "vxg_tenant-alice-two-0000000000000000000000000000000000";
const BOB = "vxg_tenant-bob-00000000000000000000000000000000000000000";
const ADMIN = "vxg_tenant-admin-000000000000000000000000000000000000000";

let dataDir: string;
let gateway: Gateway;
let backend: FakeCloneBackend;
let publicUrl: string;
const clients: VoxgateClient[] = [];

/** A client of `token` speaking `protocol` (HTTP/2 for gRPC, HTTP/1.1 otherwise). */
function clientOf(token: string, protocol: VoxgateProtocol = "connect"): VoxgateClient {
  const client = createVoxgateClient({ baseUrl: publicUrl, token, protocol, timeoutMs: 60_000 });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "voxgate-tenants-"));
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [
      // Two tokens of one tenant share its voices; bob's tenant defaults to his token's name.
      { name: "alice", tenant: "acme", sha256: hashToken(ALICE), scopes: ["tts", "voices"] },
      { name: "alice-ci", tenant: "acme", sha256: hashToken(ALICE_TWO), scopes: ["voices"] },
      { name: "bob", sha256: hashToken(BOB), scopes: ["tts", "voices"] },
      { name: "ops", sha256: hashToken(ADMIN), scopes: ["tts", "voices", "admin"] },
    ],
    limits: {
      maxTextChars: 5000,
      maxRequestBytes: 4 * 1024 * 1024,
      maxClipBytes: 16 * 1024 * 1024,
      defaultTimeoutMs: 60_000,
      maxTimeoutMs: 300_000,
    },
    storage: { dataDir, databaseUrl: "memory:" },
    log: pino({ level: "silent" }),
  });
  ({ publicUrl } = await gateway.listen());
  backend = createFakeCloneBackend({ id: "cloner" });
  gateway.registry.add(backend.registration, "test");
  gateway.registry.heartbeat("cloner");
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await gateway?.close(500);
  await rm(dataDir, { recursive: true, force: true });
});

async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // read to the end
  }
}

/** A REST or OpenAI call with `token`; resolves with the status and the parsed JSON (if any). */
async function http(
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${publicUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = Buffer.from(await response.arrayBuffer());
  let json: unknown;
  try {
    json = JSON.parse(text.toString("utf8"));
  } catch {
    json = undefined;
  }
  return { status: response.status, json };
}

/** Uploads raw prompt bytes over REST as `token`; resolves with the digest. */
async function uploadPrompt(token: string, bytes: Buffer): Promise<string> {
  const response = await fetch(
    `${publicUrl}/v1/prompts:upload?name=raw&model_family=fake-clone&model_size=1`,
    {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: bytes,
    },
  );
  expect(response.status).toBe(200);
  const json = (await response.json()) as { prompt: { digest: string } };
  return json.prompt.digest;
}

let privateVoice: Voice;
let sharedVoice: Voice;
let rawDigest: string;

describe("cloned voices and prompts belong to the tenant of the token that made them", () => {
  beforeAll(async () => {
    const alice = clientOf(ALICE);
    privateVoice = (
      await alice.voices.createVoice({
        name: "Private",
        referenceAudio: toneWav(1),
        referenceText: "secret transcript",
      })
    ).voice as Voice;
    sharedVoice = (
      await alice.voices.createVoice({ name: "Shared", referenceAudio: toneWav(2), shared: true })
    ).voice as Voice;
    rawDigest = await uploadPrompt(ALICE, Buffer.from("alice's own raw prompt bytes"));
    expect(privateVoice.owner).toBe("acme");
    expect(sharedVoice.shared).toBe(true);
  }, 60_000);

  const PROTOCOLS: VoxgateProtocol[] = ["connect", "grpc", "grpc-web"];

  it.each(PROTOCOLS)("another tenant gets NOT_FOUND over %s", async (protocol) => {
    const bob = clientOf(BOB, protocol);
    const id = privateVoice.id;
    const digest = privateVoice.promptDigest;
    const before = backend.synthesizeCalls.length;
    expect(await codeOf(bob.voices.getVoice({ voiceId: id }))).toBe(Code.NotFound);
    expect(await codeOf(bob.tts.synthesize({ text: "hi", voice: id }))).toBe(Code.NotFound);
    expect(await codeOf(bob.tts.synthesize({ text: "hi", promptId: digest }))).toBe(Code.NotFound);
    expect(await codeOf(bob.tts.synthesize({ text: "hi", promptId: rawDigest }))).toBe(
      Code.NotFound,
    );
    expect(await codeOf(drain(bob.prompts.getPrompt({ digest })))).toBe(Code.NotFound);
    expect(await codeOf(drain(bob.prompts.getPrompt({ digest: rawDigest })))).toBe(Code.NotFound);
    expect(await codeOf(bob.prompts.statPrompt({ digest: rawDigest }))).toBe(Code.NotFound);
    expect(await codeOf(bob.prompts.deletePrompt({ digest: rawDigest }))).toBe(Code.NotFound);
    expect(await codeOf(bob.voices.deleteVoice({ voiceId: id }))).toBe(Code.NotFound);
    expect(await codeOf(bob.voices.analyzeVoice({ voiceId: id }))).toBe(Code.NotFound);
    expect(await codeOf(bob.voices.updateVoice({ voiceId: id, shared: true }))).toBe(Code.NotFound);
    const listed = await bob.voices.listVoices({ type: VoiceType.CLONED });
    expect(listed.voices.map((v) => v.id)).toEqual([sharedVoice.id]);
    expect((await bob.prompts.listPrompts({})).prompts).toEqual([]);
    // Nothing reached a backend, and the owner still has everything.
    expect(backend.synthesizeCalls.length).toBe(before);
    const alice = clientOf(ALICE, protocol);
    expect((await alice.voices.getVoice({ voiceId: id })).voice?.referenceText).toBe(
      "secret transcript",
    );
    expect((await alice.prompts.statPrompt({ digest: rawDigest })).prompt?.digest).toBe(rawDigest);
  });

  it("another tenant gets 404 over REST", async () => {
    const id = privateVoice.id;
    const digest = privateVoice.promptDigest;
    const before = backend.synthesizeCalls.length;
    expect((await http(BOB, "GET", `/v1/voices/${id}`)).status).toBe(404);
    expect(
      (await http(BOB, "POST", "/v1/speech:synthesize", { text: "hi", voice: id })).status,
    ).toBe(404);
    expect(
      (await http(BOB, "POST", "/v1/speech:synthesize", { text: "hi", promptId: digest })).status,
    ).toBe(404);
    expect((await http(BOB, "GET", `/v1/prompts/${digest}/content`)).status).toBe(404);
    expect((await http(BOB, "GET", `/v1/prompts/${rawDigest}/content`)).status).toBe(404);
    expect((await http(BOB, "GET", `/v1/prompts/${rawDigest}`)).status).toBe(404);
    expect((await http(BOB, "DELETE", `/v1/prompts/${rawDigest}`)).status).toBe(404);
    expect((await http(BOB, "DELETE", `/v1/voices/${id}`)).status).toBe(404);
    expect((await http(BOB, "PATCH", `/v1/voices/${id}`, { shared: true })).status).toBe(404);
    const list = (await http(BOB, "GET", "/v1/voices?type=VOICE_TYPE_CLONED")).json as {
      voices: Array<{ id: string }>;
    };
    expect(list.voices.map((v) => v.id)).toEqual([sharedVoice.id]);
    expect(backend.synthesizeCalls.length).toBe(before);
    expect((await http(ALICE, "GET", `/v1/voices/${id}`)).status).toBe(200);
  });

  it("another tenant gets 404 on the OpenAI routes", async () => {
    const before = backend.synthesizeCalls.length;
    const speech = await http(BOB, "POST", "/v1/audio/speech", {
      input: "hi",
      voice: privateVoice.id,
      response_format: "wav",
    });
    expect(speech.status).toBe(404);
    const byObject = await http(BOB, "POST", "/v1/audio/speech", {
      input: "hi",
      voice: { id: privateVoice.id },
      response_format: "wav",
    });
    expect(byObject.status).toBe(404);
    const voices = (await http(BOB, "GET", "/v1/audio/voices")).json as {
      voices: Array<{ id?: string; voice_id?: string }>;
    };
    const ids = JSON.stringify(voices);
    expect(ids).not.toContain(privateVoice.id);
    expect(ids).toContain(sharedVoice.id);
    expect(backend.synthesizeCalls.length).toBe(before);
    const own = await http(ALICE, "POST", "/v1/audio/speech", {
      input: "hi",
      voice: privateVoice.id,
      response_format: "wav",
    });
    expect(own.status).toBe(200);
  });

  it("tokens of the same tenant share its voices and prompts", async () => {
    const colleague = clientOf(ALICE_TWO, "grpc");
    const voice = (await colleague.voices.getVoice({ voiceId: privateVoice.id })).voice;
    expect(voice?.owner).toBe("acme");
    expect((await colleague.prompts.statPrompt({ digest: rawDigest })).prompt?.digest).toBe(
      rawDigest,
    );
    const digests = (await colleague.prompts.listPrompts({})).prompts.map((p) => p.digest);
    expect(digests.sort()).toEqual(
      [privateVoice.promptDigest, sharedVoice.promptDigest, rawDigest].sort(),
    );
  });

  it("an admin token sees and speaks every tenant's voices", async () => {
    const admin = clientOf(ADMIN, "grpc-web");
    expect((await admin.voices.getVoice({ voiceId: privateVoice.id })).voice?.owner).toBe("acme");
    expect(await codeOf(admin.tts.synthesize({ text: "hi", voice: privateVoice.id }))).toBe("ok");
    expect(
      await codeOf(admin.tts.synthesize({ text: "hi", promptId: privateVoice.promptDigest })),
    ).toBe("ok");
    expect(await codeOf(drain(admin.prompts.getPrompt({ digest: rawDigest })))).toBe("ok");
    const listed = await admin.voices.listVoices({ type: VoiceType.CLONED });
    expect(listed.voices.map((v) => v.id).sort()).toEqual([privateVoice.id, sharedVoice.id].sort());
  });

  it("a shared voice is read and spoken by all, changed only by its owner or admin", async () => {
    const bob = clientOf(BOB, "connect");
    const seen = (await bob.voices.getVoice({ voiceId: sharedVoice.id })).voice;
    // Another tenant does not learn whose voice it is.
    expect(seen?.owner).toBe("");
    expect(seen?.shared).toBe(true);
    expect(await codeOf(bob.tts.synthesize({ text: "hi", voice: sharedVoice.id }))).toBe("ok");
    expect(
      await codeOf(bob.tts.synthesize({ text: "hi", promptId: sharedVoice.promptDigest })),
    ).toBe("ok");
    // Speaking is not downloading: the prompt bytes stay the owner's.
    expect(await codeOf(drain(bob.prompts.getPrompt({ digest: sharedVoice.promptDigest })))).toBe(
      Code.NotFound,
    );
    expect(await codeOf(bob.voices.deleteVoice({ voiceId: sharedVoice.id }))).toBe(Code.NotFound);
    expect(await codeOf(bob.voices.updateVoice({ voiceId: sharedVoice.id, shared: false }))).toBe(
      Code.NotFound,
    );

    // The owner unshares it: bob loses it at once.
    const alice = clientOf(ALICE);
    const unshared = await alice.voices.updateVoice({ voiceId: sharedVoice.id, shared: false });
    expect(unshared.voice?.shared).toBe(false);
    expect(await codeOf(bob.voices.getVoice({ voiceId: sharedVoice.id }))).toBe(Code.NotFound);
    expect(await codeOf(bob.tts.synthesize({ text: "hi", voice: sharedVoice.id }))).toBe(
      Code.NotFound,
    );
    // An admin may share it again.
    const admin = clientOf(ADMIN);
    await admin.voices.updateVoice({ voiceId: sharedVoice.id, shared: true });
    expect(await codeOf(bob.tts.synthesize({ text: "hi", voice: sharedVoice.id }))).toBe("ok");
  });

  it("presets stay global", async () => {
    const bob = clientOf(BOB);
    expect((await bob.voices.getVoice({ voiceId: "fake-preset" })).voice?.type).toBe(
      VoiceType.PRESET,
    );
  });

  it("a tenant deleting a shared upload lets go of it without removing another's bytes", async () => {
    const bytes = Buffer.from("the same prompt bytes uploaded by two tenants");
    const digest = await uploadPrompt(ALICE, bytes);
    expect(await uploadPrompt(BOB, bytes)).toBe(digest);
    const bob = clientOf(BOB);
    await bob.prompts.deletePrompt({ digest });
    expect(await codeOf(bob.prompts.statPrompt({ digest }))).toBe(Code.NotFound);
    const alice = clientOf(ALICE);
    expect(await codeOf(drain(alice.prompts.getPrompt({ digest })))).toBe("ok");
  });

  it("a tenant uploading another's bytes reads back its own metadata, never the first upload's", async () => {
    const bytes = Buffer.from("bytes two tenants happen to upload, each with its own transcript");
    const upload = async (token: string, name: string, transcript: string) => {
      const response = await fetch(
        `${publicUrl}/v1/prompts:upload?name=${name}&reference_text=${encodeURIComponent(transcript)}` +
          `&model_family=fake-clone&model_size=1&tag.who=${name}`,
        {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: bytes,
        },
      );
      expect(response.status).toBe(200);
      return (await response.json()) as {
        prompt: { digest: string; metadata: { name: string; referenceText?: string } };
      };
    };
    const first = await upload(ALICE, "alice-take", "alice's private transcript");
    const second = await upload(BOB, "bob-take", "bob's words");
    expect(second.prompt.digest).toBe(first.prompt.digest);
    // Before: bob got alice's name and transcript back, on upload and on every read after it.
    expect(second.prompt.metadata).toMatchObject({
      name: "bob-take",
      referenceText: "bob's words",
    });
    const digest = first.prompt.digest;
    const bob = clientOf(BOB, "grpc");
    const seenByBob = (await bob.prompts.statPrompt({ digest })).prompt?.metadata;
    expect(seenByBob?.name).toBe("bob-take");
    expect(seenByBob?.referenceText).toBe("bob's words");
    expect(seenByBob?.tags).toEqual({ who: "bob-take" });
    const listed = await bob.prompts.listPrompts({ pageSize: 500 });
    const inList = listed.prompts.find((p) => p.digest === digest)?.metadata;
    expect(inList?.referenceText).toBe("bob's words");
    for (const prompt of listed.prompts) {
      expect(prompt.metadata?.referenceText).not.toBe("alice's private transcript");
    }
    // Alice still reads her own.
    const alice = clientOf(ALICE);
    expect((await alice.prompts.statPrompt({ digest })).prompt?.metadata?.referenceText).toBe(
      "alice's private transcript",
    );
  });

  it("naming a digest reaches only the caller's own prompts", async () => {
    const bob = clientOf(BOB);
    // rawDigest is alice's private upload: bob knowing its digest must not make him an owner.
    expect(await codeOf(bob.prompts.namePrompt({ name: "taken-over", digest: rawDigest }))).toBe(
      Code.NotFound,
    );
    expect(await codeOf(bob.prompts.statPrompt({ digest: rawDigest }))).toBe(Code.NotFound);
    const alice = clientOf(ALICE);
    const named = await alice.prompts.namePrompt({ name: "mine", digest: rawDigest });
    expect(named.prompt?.digest).toBe(rawDigest);
  });

  it("the owner deletes its voice; no other tenant could before", async () => {
    const alice = clientOf(ALICE, "grpc");
    await alice.voices.deleteVoice({ voiceId: privateVoice.id });
    expect(await codeOf(alice.voices.getVoice({ voiceId: privateVoice.id }))).toBe(Code.NotFound);
  });
});
