import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadSettings } from "../../services/config/settings.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import {
  blobStoreConfigFromSettings,
  createBlobStore,
  createBlobUrlSigner,
  loadOrCreateBlobUrlSecret,
} from "../../services/object-store/index.js";

const log = pino({ level: "silent" });
const settingsFrom = (env: Record<string, string>) =>
  loadSettings(gatewaySettings, { argv: [], env });

describe("object store configuration", () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), "voxgate-store-config-"));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it("defaults to the filesystem store under <dataDir>/blobs with a persisted URL secret", async () => {
    const settings = settingsFrom({});
    expect(settings.store).toBe("filesystem");
    expect(settings.dataDir).toBe(".voxgate");
    expect(settings.databaseUrl).toBe("");
    const config = blobStoreConfigFromSettings(settings, dataDir);
    expect(config).toEqual({
      kind: "filesystem",
      rootDir: join(dataDir, "blobs"),
      urlSecret: "",
      secretDir: dataDir,
    });
    const runtime = createBlobStore(config, { publicBaseUrl: () => "http://gw.example", log });
    expect(runtime.store.kind).toBe("filesystem");
    expect(runtime.frontend).toBeDefined();
    const secretPath = join(dataDir, "blob-url-secret");
    expect(statSync(secretPath).mode & 0o777).toBe(0o600);
    const secret = readFileSync(secretPath, "utf8");
    // A restart reads the same secret, so URLs it signed before still verify.
    expect(Buffer.from(loadOrCreateBlobUrlSecret(dataDir)).toString("hex")).toBe(secret.trim());
    await runtime.store.put("a/b", Buffer.from("x"), { contentType: "text/plain" });
    const url = await runtime.store.signedReadUrl("a/b", 60_000);
    expect(url).toMatch(
      /^http:\/\/gw\.example\/v1\/blobs\/a\/b\?expires=\d+&signature=[0-9a-f]{64}$/,
    );
    const signer = createBlobUrlSigner({
      secret: loadOrCreateBlobUrlSecret(dataDir),
      baseUrl: () => "http://gw.example",
    });
    const parsed = new URL(url);
    expect(
      signer.verify(
        "a/b",
        parsed.searchParams.get("expires") ?? "",
        parsed.searchParams.get("signature") ?? "",
      ),
    ).toBe(true);
    expect(
      signer.verify(
        "a/c",
        parsed.searchParams.get("expires") ?? "",
        parsed.searchParams.get("signature") ?? "",
      ),
    ).toBe(false);
  });

  it("builds an S3 store from the environment, credentials from the default chain", () => {
    const settings = settingsFrom({
      VOXGATE_STORE: "s3",
      VOXGATE_S3_BUCKET: "voices",
      VOXGATE_S3_ENDPOINT: "http://127.0.0.1:9000",
      VOXGATE_S3_FORCE_PATH_STYLE: "true",
      VOXGATE_S3_PREFIX: "vx/",
    });
    const config = blobStoreConfigFromSettings(settings, dataDir);
    expect(config).toMatchObject({
      kind: "s3",
      bucket: "voices",
      endpoint: "http://127.0.0.1:9000",
      forcePathStyle: true,
      prefix: "vx/",
      region: "us-east-1",
      accessKeyId: "",
      partSizeBytes: 8 * 1024 * 1024,
    });
    const runtime = createBlobStore(config, { publicBaseUrl: () => "", log });
    expect(runtime.store.kind).toBe("s3");
    expect(runtime.frontend).toBeUndefined();
  });

  it("names the missing or inconsistent setting", () => {
    expect(() =>
      blobStoreConfigFromSettings(settingsFrom({ VOXGATE_STORE: "s3" }), dataDir),
    ).toThrow(/VOXGATE_S3_BUCKET is required/);
    expect(() =>
      blobStoreConfigFromSettings(settingsFrom({ VOXGATE_STORE: "gcs" }), dataDir),
    ).toThrow(/VOXGATE_GCS_BUCKET is required/);
    expect(() =>
      blobStoreConfigFromSettings(
        settingsFrom({
          VOXGATE_STORE: "s3",
          VOXGATE_S3_BUCKET: "b",
          VOXGATE_S3_ACCESS_KEY_ID: "AKIA",
        }),
        dataDir,
      ),
    ).toThrow(/VOXGATE_S3_SECRET_ACCESS_KEY/);
    expect(() =>
      blobStoreConfigFromSettings(
        settingsFrom({ VOXGATE_STORE: "s3", VOXGATE_S3_BUCKET: "b", VOXGATE_S3_PREFIX: "../" }),
        dataDir,
      ),
    ).toThrow(/prefix/);
    expect(() => settingsFrom({ VOXGATE_STORE: "ftp" })).toThrow(/store from VOXGATE_STORE/);
    expect(() => settingsFrom({ VOXGATE_BLOB_URL_SECRET: "short" })).toThrow(/at least 32/);
    expect(() => settingsFrom({ VOXGATE_SIGNED_URL_TTL_MS: "3600001" })).toThrow(/signedUrlTtlMs/);
  });

  it("builds a GCS store for an emulator endpoint", () => {
    const config = blobStoreConfigFromSettings(
      settingsFrom({
        VOXGATE_STORE: "gcs",
        VOXGATE_GCS_BUCKET: "voices",
        VOXGATE_GCS_API_ENDPOINT: "http://127.0.0.1:4443",
        VOXGATE_GCS_PROJECT: "p",
      }),
      dataDir,
    );
    expect(config).toMatchObject({
      kind: "gcs",
      bucket: "voices",
      apiEndpoint: "http://127.0.0.1:4443",
    });
    expect(createBlobStore(config, { publicBaseUrl: () => "", log }).store.kind).toBe("gcs");
  });
});
