import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { BlobStore } from "../../services/object-store/blob-store.js";
import { createBlobUrlSigner } from "../../services/object-store/blob-url-signer.js";
import { createFsBlobStore } from "../../services/object-store/fs-blob-store.js";
import { createGcsBlobStore } from "../../services/object-store/gcs-blob-store.js";
import { createS3BlobStore } from "../../services/object-store/s3-blob-store.js";
import { createSignedBlobFrontend } from "../../services/object-store/signed-blob-frontend.js";
import { startGcsEmulator } from "../gcs-emulator/index.js";
import { startS3rverServer } from "../helpers/s3rver-server.js";

/** One object store under test, with what the conformance suite needs to poke at it. */
export interface StoreFixture {
  /** The store. */
  store: BlobStore;
  /** URL of an object as an anonymous client would try it (no credentials, no signature). */
  anonymousUrl(key: string): string;
  /** Stops everything the fixture started; idempotent. */
  close(): Promise<void>;
}

/** Store kinds the conformance suite runs against. */
export const STORE_KINDS = ["filesystem", "s3", "gcs"] as const;

/** Starts a fresh store of `kind` on 127.0.0.1. */
export function startStore(kind: (typeof STORE_KINDS)[number]): Promise<StoreFixture> {
  switch (kind) {
    case "filesystem":
      return startFsStore();
    case "s3":
      return startS3Store();
    case "gcs":
      return startGcsStore();
  }
}

/**
 * Filesystem store plus a real HTTP server serving its signed URLs through
 * {@link createSignedBlobFrontend}, as the gateway's public port would.
 */
async function startFsStore(): Promise<StoreFixture> {
  const dir = mkdtempSync(join(tmpdir(), "voxgate-fs-store-"));
  let base = "";
  const signer = createBlobUrlSigner({ secret: randomBytes(32), baseUrl: () => base });
  const store = createFsBlobStore({ rootDir: dir, urlSigner: signer });
  const frontend = createSignedBlobFrontend({ store, signer, log: pino({ level: "silent" }) });
  const server: Server = createServer((req, res) => {
    const route = frontend.route(req);
    if (!route) {
      res.writeHead(404);
      res.end();
      return;
    }
    route.serve(req, res, { requestId: "test", principal: undefined });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let closed: Promise<void> | undefined;
  return {
    store,
    anonymousUrl: (key) => `${base}/v1/blobs/${key}`,
    close() {
      closed ??= (async () => {
        await store.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        rmSync(dir, { recursive: true, force: true });
      })();
      return closed;
    },
  };
}

async function startS3Store(): Promise<StoreFixture> {
  const s3 = await startS3rverServer();
  const store = createS3BlobStore({
    bucket: s3.bucket,
    prefix: "vx/",
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: s3.credentials,
    partSizeBytes: 5 * 1024 * 1024,
  });
  let closed: Promise<void> | undefined;
  return {
    store,
    anonymousUrl: (key) => `${s3.endpoint}/${s3.bucket}/vx/${key}`,
    close() {
      closed ??= (async () => {
        await store.close();
        await s3.stop();
      })();
      return closed;
    },
  };
}

async function startGcsStore(): Promise<StoreFixture> {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const clientEmail = "voxgate-test@voxgate-test.iam.gserviceaccount.com";
  const emulator = await startGcsEmulator({
    buckets: ["voxgate-test"],
    serviceAccount: { clientEmail, publicKeyPem: publicKey },
  });
  const store = createGcsBlobStore({
    bucket: "voxgate-test",
    prefix: "vx/",
    projectId: "voxgate-test",
    apiEndpoint: emulator.url,
    credentials: { client_email: clientEmail, private_key: privateKey },
    // Outside googleapis.com the client signs its own JWTs: no token endpoint needed offline.
    universeDomain: "localhost",
    chunkSizeBytes: 4 * 1024 * 1024,
  });
  let closed: Promise<void> | undefined;
  return {
    store,
    anonymousUrl: (key) => `${emulator.url}/voxgate-test/vx/${key}`,
    close() {
      closed ??= (async () => {
        await store.close();
        await emulator.stop();
      })();
      return closed;
    },
  };
}
