import { z } from "zod";
import { boolSetting, intSetting, setting, stringSetting } from "../config/settings.js";

const MiB = 1024 * 1024;

const basePath = z.string().regex(/^(\/|(\/[A-Za-z0-9._~-]+)+)$/, {
  error: 'must be "/" (the root) or a path like /storyforge',
});

const urlList = z.preprocess(
  (value) =>
    typeof value === "string"
      ? value
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : value,
  z.array(z.url({ protocol: /^https?$/, error: "each base must be an http(s) URL" })),
);

/**
 * Settings of the StoryForge surface, its media fetcher and the Cloud job worker (README:
 * "Switching StoryForge Cloud to voxgate"); part of the gateway's settings table.
 */
export const storyforgeSettings = {
  storyforgeBasePath: setting({
    key: "storyforgeBasePath",
    flag: "storyforge-base-path",
    env: "VOXGATE_STORYFORGE_BASE_PATH",
    description:
      'path the StoryForge surface is mounted under ("/" = the root, where its /v1/tts and /v1/audio/* replace the REST bindings of those paths)',
    schema: basePath,
    defaultValue: "/storyforge",
  }),
  storyforgeMaxJsonBytes: setting({
    key: "storyforgeMaxJsonBytes",
    flag: "storyforge-max-json-bytes",
    env: "VOXGATE_STORYFORGE_MAX_JSON_BYTES",
    description: "largest JSON body of a StoryForge call, in bytes (audio_b64 travels inside it)",
    schema: intSetting(1024, 1024 * MiB),
    defaultValue: 32 * MiB,
  }),
  storyforgeMediaBucket: setting({
    key: "storyforgeMediaBucket",
    flag: "storyforge-media-bucket",
    env: "VOXGATE_STORYFORGE_MEDIA_BUCKET",
    description:
      'Cloud\'s S3-compatible bucket (Spaces) the gateway reads clips from and writes renders to; "" = none',
    schema: z.string(),
    defaultValue: "",
  }),
  storyforgeMediaEndpoint: setting({
    key: "storyforgeMediaEndpoint",
    flag: "storyforge-media-endpoint",
    env: "VOXGATE_STORYFORGE_MEDIA_ENDPOINT",
    description: 'S3 endpoint of that bucket, e.g. https://sfo3.digitaloceanspaces.com ("" = AWS)',
    schema: z.string(),
    defaultValue: "",
  }),
  storyforgeMediaRegion: setting({
    key: "storyforgeMediaRegion",
    flag: "storyforge-media-region",
    env: "VOXGATE_STORYFORGE_MEDIA_REGION",
    description: "region of that bucket",
    schema: stringSetting,
    defaultValue: "us-east-1",
  }),
  storyforgeMediaForcePathStyle: setting({
    key: "storyforgeMediaForcePathStyle",
    flag: "storyforge-media-force-path-style",
    env: "VOXGATE_STORYFORGE_MEDIA_FORCE_PATH_STYLE",
    description: "path-style S3 URLs for that bucket",
    schema: boolSetting,
    defaultValue: false,
  }),
  storyforgeMediaAccessKeyId: setting({
    key: "storyforgeMediaAccessKeyId",
    flag: undefined,
    env: "VOXGATE_STORYFORGE_MEDIA_ACCESS_KEY_ID",
    description: 'access key id for that bucket; "" = the AWS default credential chain',
    schema: z.string(),
    defaultValue: "",
  }),
  storyforgeMediaSecretAccessKey: setting({
    key: "storyforgeMediaSecretAccessKey",
    flag: undefined,
    env: "VOXGATE_STORYFORGE_MEDIA_SECRET_ACCESS_KEY",
    description: "secret access key for that bucket",
    schema: z.string(),
    defaultValue: "",
  }),
  storyforgeMediaPublicBases: setting({
    key: "storyforgeMediaPublicBases",
    flag: "storyforge-media-public-bases",
    env: "VOXGATE_STORYFORGE_MEDIA_PUBLIC_BASES",
    description:
      "comma-separated public URL bases of that bucket (Cloud's SPACES_PUBLIC_BASE); a URL under one is read as an object key with the gateway's credentials, and the first one makes mp3_url",
    schema: urlList,
    defaultValue: [] as string[],
  }),
  storyforgeFetchBases: setting({
    key: "storyforgeFetchBases",
    flag: "storyforge-fetch-bases",
    env: "VOXGATE_STORYFORGE_FETCH_BASES",
    description:
      "comma-separated other URL bases the gateway may GET without credentials (public addresses only; redirects must stay under a base)",
    schema: urlList,
    defaultValue: [] as string[],
  }),
  storyforgeFetchAllowLoopback: setting({
    key: "storyforgeFetchAllowLoopback",
    flag: undefined,
    env: "VOXGATE_STORYFORGE_FETCH_ALLOW_LOOPBACK",
    description:
      "lets fetch bases resolve to 127.0.0.0/8 or ::1 (tests only; other private ranges stay refused)",
    schema: boolSetting,
    defaultValue: false,
  }),
  storyforgeFetchMaxBytes: setting({
    key: "storyforgeFetchMaxBytes",
    flag: "storyforge-fetch-max-bytes",
    env: "VOXGATE_STORYFORGE_FETCH_MAX_BYTES",
    description: "largest object a StoryForge URL may name, in bytes (Cloud's own limit is 50 MiB)",
    schema: intSetting(1024, 1024 * MiB),
    defaultValue: 50 * MiB,
  }),
  storyforgeFetchTimeoutMs: setting({
    key: "storyforgeFetchTimeoutMs",
    flag: "storyforge-fetch-timeout-ms",
    env: "VOXGATE_STORYFORGE_FETCH_TIMEOUT_MS",
    description: "longest read of one StoryForge URL, in ms",
    schema: intSetting(100, 3_600_000),
    defaultValue: 30_000,
  }),
  storyforgeCloudUrl: setting({
    key: "storyforgeCloudUrl",
    flag: "storyforge-cloud-url",
    env: "VOXGATE_STORYFORGE_CLOUD_URL",
    description:
      'base URL of StoryForge Cloud whose produce_audio jobs this gateway claims; "" = the worker is off',
    schema: z.union([z.literal(""), z.url({ protocol: /^https?$/ })]),
    defaultValue: "",
  }),
  storyforgeJobToken: setting({
    key: "storyforgeJobToken",
    flag: undefined,
    env: "VOXGATE_STORYFORGE_JOB_TOKEN",
    description: "Cloud's SF_JOB_TOKEN, sent as x-sf-job-token (required with the worker on)",
    schema: z.string(),
    defaultValue: "",
  }),
  storyforgeWorkerPollMs: setting({
    key: "storyforgeWorkerPollMs",
    flag: "storyforge-worker-poll-ms",
    env: "VOXGATE_STORYFORGE_WORKER_POLL_MS",
    description: "interval of claim attempts and progress checks of the Cloud job worker, in ms",
    schema: intSetting(50, 600_000),
    defaultValue: 2000,
  }),
  storyforgeWorkerLeaseMs: setting({
    key: "storyforgeWorkerLeaseMs",
    flag: "storyforge-worker-lease-ms",
    env: "VOXGATE_STORYFORGE_WORKER_LEASE_MS",
    description:
      "how long a gateway holds a claimed Cloud job without renewing it before another gateway takes it over, in ms",
    schema: intSetting(200, 3_600_000),
    defaultValue: 30_000,
  }),
  storyforgeOutputPrefix: setting({
    key: "storyforgeOutputPrefix",
    flag: "storyforge-output-prefix",
    env: "VOXGATE_STORYFORGE_OUTPUT_PREFIX",
    description: "key prefix of rendered MP3s in Cloud's bucket (the key ends <cloud job id>.mp3)",
    schema: z.string().regex(/^([A-Za-z0-9][A-Za-z0-9._=-]*\/)*$/, { error: "must end with /" }),
    defaultValue: "audio/productions/",
  }),
};
