/**
 * `voxgate prompts import` from a GCS bucket laid out as the Qwen3 relay left it
 * (`voice-prompts/{name}.pt` with `qwen3_*` object metadata), through the GCS JSON-API emulator
 * and the real `@google-cloud/storage` client, into an in-process gateway; each imported prompt is
 * then spoken by name on a real agent process. The objects hold eSpeak NG clone prompts (the
 * engine that runs here) and are imported as model family espeak-ng: a prompt binds to the model
 * family/size it is imported with, and speaking routes only to backends running exactly that model.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../clients/cli/main.js";
import { createTestIo } from "../../clients/testing/test-io.js";
import { ESPEAK_CLONE_FORMAT } from "../../services/engines/espeak/espeak-clone.js";
import { createGcsBlobStore } from "../../services/object-store/gcs-blob-store.js";
import { type GcsEmulator, startGcsEmulator } from "../gcs-emulator/index.js";
import { type RelayStack, startRelayStack } from "./relay-stack.js";

const BUCKET = "relay-backups";

/** An eSpeak clone prompt for a voice with median pitch `f0` Hz (as the engine would make). */
function espeakPrompt(f0: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      format: ESPEAK_CLONE_FORMAT,
      f0MedianHz: f0,
      f0RangeHz: [f0 * 0.8, f0 * 1.25],
      wordsPerMinute: 170,
      syllablesPerSecond: 4.5,
      baseVoice: "en-us",
      voicedRatio: 0.6,
      referenceDurationMs: 5000,
    }),
  );
}

let stack: RelayStack;
let emulator: GcsEmulator;
let dir = "";
let keyFile = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "voxgate-prompt-import-"));
  const { publicKey, privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const clientEmail = "relay-import@voxgate-test.iam.gserviceaccount.com";
  emulator = await startGcsEmulator({
    buckets: [BUCKET],
    serviceAccount: { clientEmail, publicKeyPem: publicKey },
  });
  keyFile = join(dir, "service-account.json");
  await writeFile(
    keyFile,
    JSON.stringify({ type: "service_account", client_email: clientEmail, private_key: privateKey }),
  );
  // The relay's bucket: three prompts with its metadata, and objects the import must leave alone.
  const bucket = createGcsBlobStore({
    bucket: BUCKET,
    prefix: "",
    projectId: "voxgate-test",
    apiEndpoint: emulator.url,
    credentials: { client_email: clientEmail, private_key: privateKey },
    universeDomain: "localhost",
  });
  const put = (key: string, body: Buffer, metadata: Record<string, string> = {}) =>
    bucket.put(key, body, { contentType: "application/octet-stream", metadata });
  await put("voice-prompts/maya-calm.pt", espeakPrompt(220), {
    qwen3_character: "Maya",
    qwen3_tags: JSON.stringify(["maya", "calm"]),
    qwen3_ref_text: "Hello, I am Maya.",
    qwen3_x_vector_only: "false",
  });
  await put("voice-prompts/maya-angry.pt", espeakPrompt(260), {
    qwen3_character: "Maya",
    qwen3_tags: JSON.stringify(["maya", "angry"]),
  });
  await put("voice-prompts/narrator.pt", espeakPrompt(110));
  await put("voice-prompts/notes.txt", Buffer.from("not a prompt"));
  await put("other/stray.pt", espeakPrompt(150));
  await put("qwen/qwen-voice.pt", espeakPrompt(300));
  await bucket.close();

  stack = await startRelayStack({ agents: { "import-agent": {} } });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await emulator?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const importArgs = () => [
  "prompts",
  "import",
  "--from",
  `gs://${BUCKET}`,
  "--model-family",
  "espeak-ng",
  "--gcs-endpoint",
  emulator.url,
  "--gcs-key-file",
  keyFile,
  "--gcs-project",
  "voxgate-test",
  "--gcs-universe-domain",
  "localhost",
  "--url",
  stack.url,
  // The first import opens the gateway's database, slow on a loaded machine.
  "--timeout",
  "120",
  "--json",
];

describe("voxgate prompts import from the relay's GCS bucket", () => {
  it("imports the three voice-prompts/*.pt objects with names, tags and labels", async () => {
    const t = createTestIo({ env: { VOXGATE_TOKEN: stack.tokens.client } });
    const code = await main(importArgs(), t.io);
    expect(code, t.stderr()).toBe(0);
    const lines = t
      .stdout()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { name: string; store_key: string; source: string });
    expect(lines.map((l) => l.name).sort()).toEqual(["maya-angry", "maya-calm", "narrator"]);
    for (const line of lines) expect(line.store_key).toMatch(/^prompts\/sha256\//);

    const res = await stack.fetch("/api/v1/voices/prompts?tags=maya");
    const listed = (await res.json()) as { prompts: Array<Record<string, unknown>> };
    expect(listed.prompts.map((p) => p.name)).toEqual(["maya-angry", "maya-calm"]);
    expect(listed.prompts[1]).toMatchObject({
      character: "Maya",
      tags: ["maya", "calm"],
      ref_text: "Hello, I am Maya.",
      model: "espeak-ng",
    });
    // The first import opens the gateway's database: seconds, more on a loaded machine.
  }, 120_000);

  it("speaks each imported prompt by name on the agent (its engine accepts them as its own)", async () => {
    const sizes: number[] = [];
    for (const name of ["maya-calm", "maya-angry", "narrator"]) {
      const res = await stack.fetch("/api/v1/tts/clone-prompt", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "audio/wav" },
        body: JSON.stringify({ voice_prompt: name, text: "The prompt came from the bucket." }),
      });
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(res.status, bytes.toString("utf8", 0, 200)).toBe(200);
      expect(bytes.subarray(0, 4).toString()).toBe("RIFF");
      sizes.push(bytes.byteLength);
    }
    // The prompts only differ in pitch, so the clips are alike in length; what proves they were
    // used is that the agent's engine accepted them as its own format (a foreign prompt fails).
    expect(sizes.every((s) => s > 10_000)).toBe(true);
    const agent = stack.gateway.registry.get("import-agent");
    expect(agent?.callsTotal).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it("a second import skips existing names unless --replace", async () => {
    const t = createTestIo({ env: { VOXGATE_TOKEN: stack.tokens.client } });
    expect(await main(importArgs(), t.io)).toBe(0);
    expect(t.stdout()).toBe("");
    expect(t.stderr()).toMatch(/skipped maya-calm: a prompt of that name exists/);
    expect(t.stderr()).toMatch(/skipped 3/);
  }, 60_000);

  it("names bind to the model they were imported with: another model's backend is not asked", async () => {
    const t = createTestIo({ env: { VOXGATE_TOKEN: stack.tokens.client } });
    const args = importArgs().map((a) =>
      a === "espeak-ng" ? "qwen3-tts" : a === `gs://${BUCKET}` ? `gs://${BUCKET}/qwen/` : a,
    );
    expect(await main([...args, "--model-size", "1.7b"], t.io), t.stderr()).toBe(0);
    expect(t.stdout()).toMatch(/"name":"qwen-voice"/);
    const calls = stack.gateway.registry.get("import-agent")?.callsTotal;
    const res = await stack.fetch("/api/v1/tts/clone-prompt", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ voice_prompt: "qwen-voice", text: "Which model?" }),
    });
    const json = (await res.json()) as { error: string };
    expect(res.status).toBe(503);
    expect(json.error).toMatch(/qwen3-tts/);
    expect(stack.gateway.registry.get("import-agent")?.callsTotal).toBe(calls);
  }, 60_000);
});
