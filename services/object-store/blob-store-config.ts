import { join } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import type { HttpFrontend } from "../gateway/http-frontend.js";
import type { BlobStore } from "./blob-store.js";
import { createBlobUrlSigner, loadOrCreateBlobUrlSecret } from "./blob-url-signer.js";
import { createFsBlobStore } from "./fs-blob-store.js";
import { createLazyBlobStore } from "./lazy-blob-store.js";
import { createSignedBlobFrontend } from "./signed-blob-frontend.js";

const prefix = z.string().regex(/^([A-Za-z0-9][A-Za-z0-9._=-]*\/)*$/, {
  error: "prefix must be empty or end with / (segments of A-Z a-z 0-9 . _ = -)",
});

/** Validated object store configuration; {@link blobStoreConfigFromSettings} builds it. */
export const blobStoreConfigSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("filesystem"),
    /** Directory of the store. */
    rootDir: z.string().min(1),
    /** HMAC key of signed URLs (32+ characters); empty = generated and kept in `secretDir`. */
    urlSecret: z.union([z.literal(""), z.string().min(32)]),
    /** Where a generated URL secret is kept. */
    secretDir: z.string().min(1),
  }),
  z.object({
    kind: z.literal("s3"),
    bucket: z.string().min(1, { error: "VOXGATE_S3_BUCKET is required for VOXGATE_STORE=s3" }),
    prefix,
    endpoint: z.union([z.literal(""), z.url()]),
    region: z.string().min(1),
    forcePathStyle: z.boolean(),
    accessKeyId: z.string(),
    secretAccessKey: z.string(),
    partSizeBytes: z.int().min(5 * 1024 * 1024),
  }),
  z.object({
    kind: z.literal("gcs"),
    bucket: z.string().min(1, { error: "VOXGATE_GCS_BUCKET is required for VOXGATE_STORE=gcs" }),
    prefix,
    projectId: z.string(),
    keyFilename: z.string(),
    apiEndpoint: z.union([z.literal(""), z.url()]),
  }),
]);

/** Object store configuration. */
export type BlobStoreConfig = z.infer<typeof blobStoreConfigSchema>;

/** The gateway settings {@link blobStoreConfigFromSettings} reads. */
export interface BlobStoreSettings {
  store: "filesystem" | "s3" | "gcs";
  s3Bucket: string;
  s3Endpoint: string;
  s3Region: string;
  s3ForcePathStyle: boolean;
  s3Prefix: string;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
  s3PartSizeBytes: number;
  gcsBucket: string;
  gcsPrefix: string;
  gcsProject: string;
  gcsKeyFile: string;
  gcsApiEndpoint: string;
  blobUrlSecret: string;
}

/**
 * Builds and validates the object store configuration from gateway settings; the filesystem store
 * lives in `<dataDir>/blobs`.
 * @throws Error naming every problem (e.g. s3 without a bucket).
 */
export function blobStoreConfigFromSettings(
  settings: BlobStoreSettings,
  dataDir: string,
): BlobStoreConfig {
  const raw =
    settings.store === "s3"
      ? {
          kind: "s3",
          bucket: settings.s3Bucket,
          prefix: settings.s3Prefix,
          endpoint: settings.s3Endpoint,
          region: settings.s3Region,
          forcePathStyle: settings.s3ForcePathStyle,
          accessKeyId: settings.s3AccessKeyId,
          secretAccessKey: settings.s3SecretAccessKey,
          partSizeBytes: settings.s3PartSizeBytes,
        }
      : settings.store === "gcs"
        ? {
            kind: "gcs",
            bucket: settings.gcsBucket,
            prefix: settings.gcsPrefix,
            projectId: settings.gcsProject,
            keyFilename: settings.gcsKeyFile,
            apiEndpoint: settings.gcsApiEndpoint,
          }
        : {
            kind: "filesystem",
            rootDir: join(dataDir, "blobs"),
            urlSecret: settings.blobUrlSecret,
            secretDir: dataDir,
          };
  const result = blobStoreConfigSchema.safeParse(raw);
  if (!result.success) {
    throw new Error(
      `invalid object store settings: ${result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  }
  if (result.data.kind === "s3" && !result.data.accessKeyId !== !result.data.secretAccessKey) {
    throw new Error(
      "invalid object store settings: set both VOXGATE_S3_ACCESS_KEY_ID and VOXGATE_S3_SECRET_ACCESS_KEY, or neither (default credential chain)",
    );
  }
  return result.data;
}

/** Runtime inputs of {@link createBlobStore}. */
export interface CreateBlobStoreOptions {
  /**
   * Public base URL of the gateway (e.g. `http://127.0.0.1:8080`, or the `publicUrl` setting),
   * read when a filesystem signed URL is made; a function because the port is known only once the
   * gateway listens.
   */
  publicBaseUrl: () => string;
  /** Root logger. */
  log: Logger;
}

/** An object store plus what the gateway must serve for it. */
export interface BlobStoreRuntime {
  /** The store. */
  store: BlobStore;
  /**
   * Frontend serving gateway-signed URLs (`GET /v1/blobs/…`) for the filesystem store; undefined
   * for S3 and GCS, whose signed URLs point at the provider.
   */
  frontend: HttpFrontend | undefined;
}

/** Creates the object store `config` names. */
export function createBlobStore(
  config: BlobStoreConfig,
  options: CreateBlobStoreOptions,
): BlobStoreRuntime {
  switch (config.kind) {
    case "filesystem": {
      const secret = config.urlSecret
        ? Buffer.from(config.urlSecret, "utf8")
        : loadOrCreateBlobUrlSecret(config.secretDir);
      const urlSigner = createBlobUrlSigner({ secret, baseUrl: options.publicBaseUrl });
      const store = createFsBlobStore({ rootDir: config.rootDir, urlSigner });
      return {
        store,
        frontend: createSignedBlobFrontend({ store, signer: urlSigner, log: options.log }),
      };
    }
    case "s3":
      return {
        store: createLazyBlobStore("s3", async () => {
          const { createS3BlobStore } = await import("./s3-blob-store.js");
          return createS3BlobStore({
            bucket: config.bucket,
            prefix: config.prefix,
            endpoint: config.endpoint,
            region: config.region,
            forcePathStyle: config.forcePathStyle,
            partSizeBytes: config.partSizeBytes,
            ...(config.accessKeyId
              ? {
                  credentials: {
                    accessKeyId: config.accessKeyId,
                    secretAccessKey: config.secretAccessKey,
                  },
                }
              : {}),
          });
        }),
        frontend: undefined,
      };
    case "gcs":
      return {
        store: createLazyBlobStore("gcs", async () => {
          const { createGcsBlobStore } = await import("./gcs-blob-store.js");
          return createGcsBlobStore({
            bucket: config.bucket,
            prefix: config.prefix,
            ...(config.projectId ? { projectId: config.projectId } : {}),
            ...(config.keyFilename ? { keyFilename: config.keyFilename } : {}),
            ...(config.apiEndpoint ? { apiEndpoint: config.apiEndpoint } : {}),
          });
        }),
        frontend: undefined,
      };
  }
}
