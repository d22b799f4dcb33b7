import type { SettingValues } from "../config/settings.js";
import type { S3BlobStoreOptions } from "../object-store/s3-blob-store.js";
import type { storyforgeSettings } from "./storyforge-settings.js";

/** What the gateway needs to serve StoryForge (built from settings by {@link storyforgeOptionsFromSettings}). */
export interface StoryForgeOptions {
  /** Mount path; "" = the root. @default "/storyforge" */
  basePath: string;
  /** Largest JSON body, in bytes. */
  maxJsonBytes: number;
  /** Cloud's bucket (clips in, renders out); undefined = none. */
  bucket: (S3BlobStoreOptions & { publicBases: string[] }) | undefined;
  /** Public bases fetched without credentials. */
  fetchBases: string[];
  /** Lets fetch bases resolve to loopback (tests). */
  fetchAllowLoopback: boolean;
  /** Largest fetched object, in bytes. */
  fetchMaxBytes: number;
  /** Longest fetch, in ms. */
  fetchTimeoutMs: number;
  /** The Cloud job worker; undefined = off. */
  worker:
    | {
        /** Cloud's base URL. */
        cloudUrl: string;
        /** Cloud's SF_JOB_TOKEN. */
        jobToken: string;
        /** Claim and progress interval, in ms. */
        pollMs: number;
        /** Lease of a claimed Cloud job between gateways, in ms. */
        leaseMs: number;
        /** Key prefix of rendered MP3s. */
        outputPrefix: string;
      }
    | undefined;
}

/** Defaults for hand-built gateways (tests): mounted at /storyforge, no bucket, no worker. */
export const DEFAULT_STORYFORGE_OPTIONS: StoryForgeOptions = {
  basePath: "/storyforge",
  maxJsonBytes: 32 * 1024 * 1024,
  bucket: undefined,
  fetchBases: [],
  fetchAllowLoopback: false,
  fetchMaxBytes: 50 * 1024 * 1024,
  fetchTimeoutMs: 30_000,
  worker: undefined,
};

/**
 * Resolves the StoryForge settings.
 * @throws Error naming the problem (worker on without a job token or a bucket to upload to).
 */
export function storyforgeOptionsFromSettings(
  settings: SettingValues<typeof storyforgeSettings>,
): StoryForgeOptions {
  const bucket = settings.storyforgeMediaBucket
    ? {
        bucket: settings.storyforgeMediaBucket,
        endpoint: settings.storyforgeMediaEndpoint,
        region: settings.storyforgeMediaRegion,
        forcePathStyle: settings.storyforgeMediaForcePathStyle,
        ...(settings.storyforgeMediaAccessKeyId
          ? {
              credentials: {
                accessKeyId: settings.storyforgeMediaAccessKeyId,
                secretAccessKey: settings.storyforgeMediaSecretAccessKey,
              },
            }
          : {}),
        publicBases: settings.storyforgeMediaPublicBases,
      }
    : undefined;
  if (bucket && bucket.publicBases.length === 0) {
    throw new Error(
      "VOXGATE_STORYFORGE_MEDIA_BUCKET needs VOXGATE_STORYFORGE_MEDIA_PUBLIC_BASES (the URLs Cloud uses for its objects)",
    );
  }
  let worker: StoryForgeOptions["worker"];
  if (settings.storyforgeCloudUrl) {
    if (!settings.storyforgeJobToken) {
      throw new Error(
        "VOXGATE_STORYFORGE_CLOUD_URL needs VOXGATE_STORYFORGE_JOB_TOKEN (Cloud's SF_JOB_TOKEN)",
      );
    }
    if (!bucket) {
      throw new Error(
        "the StoryForge worker uploads renders to Cloud's bucket: set VOXGATE_STORYFORGE_MEDIA_BUCKET and VOXGATE_STORYFORGE_MEDIA_PUBLIC_BASES",
      );
    }
    worker = {
      cloudUrl: settings.storyforgeCloudUrl.replace(/\/+$/, ""),
      jobToken: settings.storyforgeJobToken,
      pollMs: settings.storyforgeWorkerPollMs,
      leaseMs: settings.storyforgeWorkerLeaseMs,
      outputPrefix: settings.storyforgeOutputPrefix,
    };
  }
  return {
    basePath: settings.storyforgeBasePath === "/" ? "" : settings.storyforgeBasePath,
    maxJsonBytes: settings.storyforgeMaxJsonBytes,
    bucket,
    fetchBases: settings.storyforgeFetchBases,
    fetchAllowLoopback: settings.storyforgeFetchAllowLoopback,
    fetchMaxBytes: settings.storyforgeFetchMaxBytes,
    fetchTimeoutMs: settings.storyforgeFetchTimeoutMs,
    worker,
  };
}
