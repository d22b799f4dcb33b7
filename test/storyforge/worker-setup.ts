/**
 * Setup shared by the end-to-end tests of the StoryForge Cloud job worker
 * (cloud-worker.e2e.test.ts, two-gateways.postgres.e2e.test.ts; cloud-calls.e2e.test.ts takes the
 * liveness limits): the liveness and job timings a loaded machine needs, the gateway settings that point the worker at a fake Cloud and its
 * bucket, and a fake Cloud whose roster holds the two voices the test stories cast.
 */
import { FAST_JOB_ENV } from "../helpers/fast-job-env.js";
import type { S3rverServer } from "../helpers/s3rver-server.js";
import { type FakeStoryForgeCloud, startFakeStoryForgeCloud } from "./fake-storyforge-cloud.js";

/**
 * Liveness limits loose enough for a shared, loaded 2-core machine: agents stay registered
 * through seconds-long stalls (the defaults drop an agent after 3 s of silence).
 */
export const LOAD_TOLERANT_ENV = {
  VOXGATE_HEARTBEAT_MISS_LIMIT: "30",
  VOXGATE_AGENT_KEEPALIVE_TIMEOUT_MS: "30000",
  VOXGATE_PROBE_TIMEOUT_MS: "15000",
  VOXGATE_PROBE_FAILURE_THRESHOLD: "20",
};

/**
 * Short job leases and polls, so a killed gateway's job is taken over within seconds, and one
 * segment rendered at a time, so a kill lands mid-render.
 */
export const WORKER_JOB_ENV = {
  ...FAST_JOB_ENV,
  VOXGATE_RENDER_CONCURRENCY: "1",
  VOXGATE_STORYFORGE_WORKER_POLL_MS: "150",
  VOXGATE_STORYFORGE_WORKER_LEASE_MS: "1500",
};

/**
 * Gateway settings that turn the worker on against `cloud`, with `media` (s3rver) as Cloud's
 * Spaces bucket `bucket`, readable by the gateway under its public base URL.
 */
export function storyForgeWorkerEnv(
  cloud: FakeStoryForgeCloud,
  media: S3rverServer,
  bucket: string,
): Record<string, string> {
  return {
    VOXGATE_STORYFORGE_MEDIA_BUCKET: bucket,
    VOXGATE_STORYFORGE_MEDIA_ENDPOINT: media.endpoint,
    VOXGATE_STORYFORGE_MEDIA_FORCE_PATH_STYLE: "true",
    VOXGATE_STORYFORGE_MEDIA_ACCESS_KEY_ID: media.credentials.accessKeyId,
    VOXGATE_STORYFORGE_MEDIA_SECRET_ACCESS_KEY: media.credentials.secretAccessKey,
    VOXGATE_STORYFORGE_MEDIA_PUBLIC_BASES: `${media.endpoint}/${bucket}/`,
    VOXGATE_STORYFORGE_CLOUD_URL: cloud.url,
    VOXGATE_STORYFORGE_JOB_TOKEN: cloud.jobToken,
  };
}

/**
 * Starts a fake Cloud (job token `jobToken`) whose roster casts the stories' two voices,
 * `terracotta-glow` and `lunar-violet`, with presets of the CPU engine.
 */
export async function startCastCloud(jobToken: string): Promise<FakeStoryForgeCloud> {
  const cloud = await startFakeStoryForgeCloud(jobToken);
  cloud.voices.push(
    { id: "terracotta-glow", engine: "espeak-ng", voice_ref: "en-us", display_name: "Terracotta" },
    { id: "lunar-violet", engine: "espeak-ng", voice_ref: "en-gb", display_name: "Lunar" },
  );
  return cloud;
}
