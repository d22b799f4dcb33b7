/**
 * The prompt store's HTTP routes behind the REAL request gate on a real HTTP/1.1 server: the raw
 * upload (`POST /v1/prompts:upload`, scope voices) and the filesystem store's signed blob URLs
 * (`GET /v1/blobs/…`, where the signature is the credential and no token is asked for).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRequestGate } from "../../services/auth/request-gate.js";
import { generateToken, hashToken } from "../../services/auth/token-codec.js";
import { createTokenStore } from "../../services/auth/token-store.js";
import type { HttpFrontend } from "../../services/gateway/http-frontend.js";
import { type BlobStoreRuntime, createBlobStore } from "../../services/object-store/index.js";
import {
  createPromptStore,
  createPromptUploadFrontend,
  type PromptStore,
  promptBlobKey,
} from "../../services/prompt-store/index.js";

const VOICES_TOKEN = generateToken();
const TTS_TOKEN = generateToken();
const MAX_PROMPT_BYTES = 64 * 1024;

describe("prompt HTTP routes behind the request gate", () => {
  let dataDir: string;
  let server: Server;
  let base: string;
  let runtime: BlobStoreRuntime;
  let prompts: PromptStore;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "voxgate-prompt-http-"));
    const log = pino({ level: "silent" });
    runtime = createBlobStore(
      { kind: "filesystem", rootDir: join(dataDir, "blobs"), urlSecret: "", secretDir: dataDir },
      { publicBaseUrl: () => base, log },
    );
    prompts = createPromptStore({
      blobs: runtime.store,
      maxPromptBytes: MAX_PROMPT_BYTES,
      maxMetadataBytes: 4096,
    });
    const gate = createRequestGate({
      tokens: createTokenStore([
        { name: "voices", sha256: hashToken(VOICES_TOKEN), scopes: ["voices"] },
        { name: "tts", sha256: hashToken(TTS_TOKEN), scopes: ["tts"] },
      ]),
      log,
    });
    const frontends: HttpFrontend[] = [
      createPromptUploadFrontend({ store: prompts, maxPromptBytes: MAX_PROMPT_BYTES, log }),
    ];
    if (runtime.frontend) frontends.push(runtime.frontend);
    server = createServer((req, res) => {
      const route = frontends.map((f) => f.route(req)).find((r) => r !== undefined);
      if (!route) {
        res.writeHead(404);
        res.end();
        return;
      }
      const admitted = gate.admit(req, res, route);
      if (admitted) route.serve(req, res, admitted);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await runtime?.store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const storedPrompts = () => {
    const dir = join(dataDir, "blobs", "data", "prompts", "sha256");
    try {
      return readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith(".json"));
    } catch {
      return [];
    }
  };

  it("uploads raw bytes with metadata from the query, under the voices scope", async () => {
    const data = randomBytes(10_000);
    const res = await fetch(
      `${base}/v1/prompts:upload?name=ada&model_family=cpu-clone&reference_text=hello&tag.lang=en`,
      {
        method: "POST",
        headers: { authorization: `Bearer ${VOICES_TOKEN}`, "content-type": "application/json" },
        body: data,
      },
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      prompt: { digest: string; sizeBytes: string; metadata: Record<string, unknown> };
    };
    expect(body.prompt.digest).toBe(createHash("sha256").update(data).digest("hex"));
    expect(body.prompt.sizeBytes).toBe("10000");
    expect(body.prompt.metadata).toMatchObject({
      name: "ada",
      referenceText: "hello",
      contentType: "application/json",
      model: { family: "cpu-clone" },
      tags: { lang: "en" },
    });
    expect((await prompts.stat(body.prompt.digest))?.sizeBytes).toBe(10_000);
    await prompts.delete(body.prompt.digest);
  });

  it("refuses uploads without a token or the voices scope before storing anything", async () => {
    const noToken = await fetch(`${base}/v1/prompts:upload`, { method: "POST", body: "abc" });
    expect(noToken.status).toBe(401);
    const wrongScope = await fetch(`${base}/v1/prompts:upload`, {
      method: "POST",
      headers: { authorization: `Bearer ${TTS_TOKEN}` },
      body: "abc",
    });
    expect(wrongScope.status).toBe(403);
    expect(storedPrompts()).toEqual([]);
  });

  it("refuses an oversized upload with 413, by Content-Length and mid-stream", async () => {
    const declared = await fetch(`${base}/v1/prompts:upload?name=big`, {
      method: "POST",
      headers: { authorization: `Bearer ${VOICES_TOKEN}` },
      body: Buffer.alloc(MAX_PROMPT_BYTES + 1),
    });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { message: string }).message).toContain(
      "VOXGATE_MAX_PROMPT_BYTES",
    );

    // Chunked: no length up front, so the limit trips while the bytes stream in.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/v1/prompts:upload?name=big`, {
        method: "POST",
        headers: { authorization: `Bearer ${VOICES_TOKEN}`, "transfer-encoding": "chunked" },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      let sent = 0;
      const pump = () => {
        while (sent < 512 * 1024) {
          sent += 8192;
          if (!req.write(Buffer.alloc(8192, 1))) return void req.once("drain", pump);
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
    expect(storedPrompts()).toEqual([]);
  });

  it("refuses unknown query parameters with 400", async () => {
    const res = await fetch(`${base}/v1/prompts:upload?key=../../etc/passwd`, {
      method: "POST",
      headers: { authorization: `Bearer ${VOICES_TOKEN}` },
      body: "abc",
    });
    expect(res.status).toBe(400);
    expect(storedPrompts()).toEqual([]);
  });

  it("serves a signed blob URL without a token, and nothing without a valid signature", async () => {
    const data = randomBytes(3000);
    const { prompt } = await prompts.put(
      (async function* () {
        yield data;
      })(),
      {
        name: "x",
        referenceText: "",
        modelFamily: "cpu-clone",
        modelSize: "",
        engine: "cpu",
        contentType: "application/octet-stream",
        tags: {},
      },
    );
    const url = await prompts.signedReadUrl(prompt.digest, 60_000);
    expect(url.startsWith(`${base}/v1/blobs/prompts/sha256/`)).toBe(true);
    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(Buffer.from(await ok.arrayBuffer()).equals(data)).toBe(true);

    const unsigned = await fetch(`${base}/v1/blobs/${promptBlobKey(prompt.digest)}`);
    expect(unsigned.status).toBe(403);
    const tampered = await fetch(url.replace(/expires=\d+/, "expires=9999999999"));
    expect(tampered.status).toBe(403);
    const traversal = await fetch(
      `${base}/v1/blobs/..%2F..%2Fblob-url-secret?expires=1&signature=${"0".repeat(64)}`,
    );
    expect([400, 403]).toContain(traversal.status);
    expect(await traversal.text()).not.toMatch(/[0-9a-f]{64}/);
    const post = await fetch(url, { method: "POST" });
    expect(post.status).toBe(405);
  });
});
