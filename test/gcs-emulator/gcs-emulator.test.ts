/**
 * The GCS emulator itself, driven by the real `@google-cloud/storage` client: it must check what
 * Google checks (checksums the client sends, credentials, V4 signatures), or the conformance suite
 * proves nothing for GCS.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Storage } from "@google-cloud/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GcsEmulator, startGcsEmulator } from "./index.js";

const CLIENT_EMAIL = "emulator-test@voxgate-test.iam.gserviceaccount.com";

describe("GCS emulator", () => {
  let emulator: GcsEmulator;
  let storage: Storage;
  let otherKeyStorage: Storage;

  beforeAll(async () => {
    const keys = () =>
      generateKeyPairSync("rsa", {
        modulusLength: 2048,
        publicKeyEncoding: { type: "spki", format: "pem" },
        privateKeyEncoding: { type: "pkcs8", format: "pem" },
      });
    const good = keys();
    const other = keys();
    emulator = await startGcsEmulator({
      buckets: ["b"],
      serviceAccount: { clientEmail: CLIENT_EMAIL, publicKeyPem: good.publicKey },
    });
    const options = (privateKey: string) => ({
      apiEndpoint: emulator.url,
      projectId: "p",
      credentials: { client_email: CLIENT_EMAIL, private_key: privateKey },
      useAuthWithCustomEndpoint: true,
      universeDomain: "localhost",
      retryOptions: { autoRetry: false },
    });
    storage = new Storage(options(good.privateKey));
    otherKeyStorage = new Storage(options(other.privateKey));
  });
  afterAll(() => emulator?.stop());

  it("stores an upload whose checksums match and reports crc32c and md5", async () => {
    const data = randomBytes(1000);
    await storage.bucket("b").file("ok").save(data, { resumable: false, validation: "crc32c" });
    const [metadata] = await storage.bucket("b").file("ok").getMetadata();
    expect(metadata.crc32c).toMatch(/^[A-Za-z0-9+/]{6}==$/);
    expect(metadata.md5Hash).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    const [back] = await storage.bucket("b").file("ok").download({ validation: "crc32c" });
    expect(back.equals(data)).toBe(true);
  });

  it("refuses uploads whose declared crc32c or md5 do not match, storing nothing", async () => {
    const file = storage.bucket("b").file("bad-crc");
    await expect(
      file.save(randomBytes(100), { resumable: false, metadata: { crc32c: "AAAAAA==" } }),
    ).rejects.toMatchObject({ code: 400 });
    await expect(
      storage
        .bucket("b")
        .file("bad-md5")
        .save(randomBytes(100), {
          resumable: false,
          metadata: { md5Hash: "AAAAAAAAAAAAAAAAAAAAAA==" },
        }),
    ).rejects.toMatchObject({ code: 400 });
    // Resumable: the declared hash comes with the session and is checked when the upload ends.
    const resumable = storage.bucket("b").file("bad-resumable");
    const [uri] = await resumable.createResumableUpload({ metadata: { crc32c: "AAAAAA==" } });
    await expect(
      resumable.save(randomBytes(300_000), { resumable: true, uri, validation: false }),
    ).rejects.toMatchObject({ code: 400 });
    expect(emulator.objectNames("b")).not.toContain("bad-resumable");
    expect(emulator.objectNames("b")).not.toContain("bad-crc");
    expect(emulator.objectNames("b")).not.toContain("bad-md5");
  });

  it("refuses anonymous and wrongly signed JSON-API calls with 401", async () => {
    const before = emulator.refusals[401];
    const anonymous = await fetch(`${emulator.url}/storage/v1/b/b/o/ok?alt=media`);
    expect(anonymous.status).toBe(401);
    await expect(otherKeyStorage.bucket("b").file("ok").getMetadata()).rejects.toMatchObject({
      code: 401,
    });
    expect(emulator.refusals[401]).toBe(before + 2);
  });

  it("serves a V4 signed URL, and refuses it tampered, forged or expired", async () => {
    await storage
      .bucket("b")
      .file("signed")
      .save(Buffer.from("signed bytes"), { resumable: false });
    const [url] = await storage
      .bucket("b")
      .file("signed")
      .getSignedUrl({ version: "v4", action: "read", expires: Date.now() + 60_000 });
    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("signed bytes");

    expect((await fetch(url.replace("/b/signed?", "/b/ok?"))).status).toBe(403);
    expect((await fetch(url.replace(/X-Goog-Expires=\d+/, "X-Goog-Expires=604800"))).status).toBe(
      403,
    );
    const [forged] = await otherKeyStorage
      .bucket("b")
      .file("signed")
      .getSignedUrl({ version: "v4", action: "read", expires: Date.now() + 60_000 });
    expect((await fetch(forged)).status).toBe(403);
    const [expired] = await storage
      .bucket("b")
      .file("signed")
      .getSignedUrl({ version: "v4", action: "read", expires: Date.now() + 1000 });
    await sleep(2100);
    expect((await fetch(expired)).status).toBe(400);
    expect((await fetch(`${emulator.url}/b/signed`)).status).toBe(403);
  });
});
