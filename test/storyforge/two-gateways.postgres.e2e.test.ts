/**
 * The Cloud job worker on two gateways at once, with real processes: two `voxgate gateway`
 * processes share one real PostgreSQL server (test/helpers/postgres-server.ts) and one object
 * store (s3rver), both with the StoryForge worker on against one fake StoryForge Cloud, and one
 * CPU agent holding a session to each. Issue 13: "several gateways may run the worker at once";
 * "a gateway killed mid-job resumes it and reports completion once".
 *
 * 1. Three short stories queued at once: each is claimed from Cloud once, set up by one gateway,
 *    uploaded once and reported completed once.
 * 2. A longer story: the gateway that claimed it is SIGKILLed after a few segments; the other one
 *    takes it over (the worker row's lease expires) and completes it, with one upload and one
 *    completion report, progress only growing, and no second claim from Cloud.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readMp3Frames } from "../../services/audio/index.js";
import { generateToken } from "../../services/auth/token-codec.js";
import { type PostgresServer, startPostgresServer } from "../helpers/postgres-server.js";
import { type S3rverServer, startS3rverServer } from "../helpers/s3rver-server.js";
import {
  type LogLine,
  spawnVoxgate,
  type VoxgateProcess,
  waitFor,
} from "../helpers/voxgate-process.js";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";
import type { FakeStoryForgeCloud } from "./fake-storyforge-cloud.js";
import {
  LOAD_TOLERANT_ENV,
  startCastCloud,
  storyForgeWorkerEnv,
  WORKER_JOB_ENV,
} from "./worker-setup.js";

const CLOUD_BUCKET = "storyforge-assets";
const STORE_BUCKET = "voxgate-blobs";

const short = (n: number) => `# SFML v1
cast:
  Narrator: terracotta-glow
  Maris: lunar-violet
scene scene-1 "Short ${n}":
  Narrator:
    - Story ${n} begins by the sea.
  PAUSE: 0.20
  Maris:
    - {delivery=calm} And it ends here.
`;

/** Eight lines, one segment at a time: the kill lands mid-render. */
const LONG = `# SFML v1
cast:
  Narrator: terracotta-glow
  Maris: lunar-violet
scene scene-1 "Long":
${Array.from(
  { length: 4 },
  (_, i) => `  Narrator:
    - Line ${2 * i + 1}, the narrator speaks of the tide and the long night.
  Maris:
    - Line ${2 * i + 2}, and Maris answers from the lantern room.`,
).join("\n")}
`;

let pg: PostgresServer;
let cloud: FakeStoryForgeCloud;
let cloudS3: S3rverServer;
let storeS3: S3rverServer;
let dataDirs: string[] = [];
const gateways: GatewayProcess[] = [];
let agent: VoxgateProcess | undefined;

beforeAll(async () => {
  pg = await startPostgresServer();
  cloud = await startCastCloud(generateToken());
  cloudS3 = await startS3rverServer(CLOUD_BUCKET);
  storeS3 = await startS3rverServer(STORE_BUCKET);
  dataDirs = [
    await mkdtemp(join(tmpdir(), "voxgate-sf2-a-")),
    await mkdtemp(join(tmpdir(), "voxgate-sf2-b-")),
  ];
}, 90_000);

afterAll(async () => {
  await agent?.stop().catch(() => {});
  await Promise.all(gateways.map((g) => g.proc.stop("SIGKILL").catch(() => {})));
  await cloud?.close();
  await cloudS3?.stop();
  await storeS3?.stop();
  await pg?.stop();
  for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
}, 60_000);

const logsOf = (msg: string, logs: readonly LogLine[]) =>
  logs.filter((l) => l.msg === msg).map((l) => String(l.cloudJobId));

describe("the StoryForge worker on two gateways sharing PostgreSQL", () => {
  it("claims each job once, and the survivor completes a job whose gateway was SIGKILLed", {
    timeout: 480_000,
  }, async () => {
    const databaseUrl = await pg.createDatabase("storyforge_two");
    const blobUrlSecret = generateToken();
    const env = (dataDir: string) => ({
      ...LOAD_TOLERANT_ENV,
      ...WORKER_JOB_ENV,
      VOXGATE_DATABASE_URL: databaseUrl,
      VOXGATE_DATA_DIR: dataDir,
      VOXGATE_STORE: "s3",
      VOXGATE_S3_BUCKET: STORE_BUCKET,
      VOXGATE_S3_ENDPOINT: storeS3.endpoint,
      VOXGATE_S3_FORCE_PATH_STYLE: "true",
      VOXGATE_S3_ACCESS_KEY_ID: storeS3.credentials.accessKeyId,
      VOXGATE_S3_SECRET_ACCESS_KEY: storeS3.credentials.secretAccessKey,
      VOXGATE_BLOB_URL_SECRET: blobUrlSecret,
      ...storyForgeWorkerEnv(cloud, cloudS3, CLOUD_BUCKET),
    });
    const first = await startGatewayProcess({
      env: env(dataDirs[0] ?? ""),
      readyTimeoutMs: 120_000,
    });
    gateways.push(first);
    const second = await startGatewayProcess({
      env: env(dataDirs[1] ?? ""),
      clientToken: first.clientToken,
      agentToken: first.agentToken,
      readyTimeoutMs: 120_000,
    });
    gateways.push(second);
    // One CPU agent with a session to each replica, as README "Running several gateways" runs it.
    agent = spawnVoxgate(
      [
        "agent",
        "--gateway",
        `127.0.0.1:${first.agentPort},127.0.0.1:${second.agentPort}`,
        "--id",
        "sf2-cpu",
      ],
      { VOXGATE_AGENT_TOKEN: first.agentToken, VOXGATE_AGENT_SLOTS: "2", ...LOAD_TOLERANT_ENV },
    );
    await Promise.all(
      [first, second].map((g) =>
        g.proc.waitForLog((l) => l.msg === "agent ready" && l.agent === "sf2-cpu", 150_000),
      ),
    );

    // 1. Three jobs at once, two workers polling for them.
    const shortIds = [1, 2, 3].map((n) =>
      cloud.queue({ id: `short-${n}`, title: `Short ${n}`, sfml: short(n) }),
    );
    for (const id of shortIds) {
      await cloud.waitForUpdate((b) => b.id === id && b.state === "completed", 240_000);
    }
    const allLogs = () => [...first.proc.logs, ...second.proc.logs];
    const claimedBy = (id: string) =>
      [first, second].filter((g) => logsOf("StoryForge job claimed", g.proc.logs).includes(id));
    // Cloud hears "completed" before the gateway's log line about it has been read from its
    // stdout (a pipe): wait for the lines, then count them.
    await waitFor(
      () =>
        shortIds.every((id) =>
          logsOf("StoryForge output uploaded", allLogs()).some((j) => j === id),
        ),
      { timeoutMs: 30_000, what: "the upload log lines of the short jobs" },
    );
    for (const id of shortIds) {
      expect(cloud.claimCount(id), id).toBe(1);
      expect(claimedBy(id), id).toHaveLength(1);
      expect(logsOf("StoryForge job rendering", allLogs()).filter((j) => j === id)).toHaveLength(1);
      expect(logsOf("StoryForge output uploaded", allLogs()).filter((j) => j === id)).toHaveLength(
        1,
      );
      const mine = cloud.updates.filter((u) => u.body.id === id);
      expect(mine.filter((u) => u.body.state === "completed")).toHaveLength(1);
      expect(mine.filter((u) => u.body.state === "failed")).toHaveLength(0);
    }
    const split = shortIds.map((id) => (claimedBy(id)[0] === first ? "A" : "B")).join("");
    console.info(`[figures] StoryForge worker on two gateways: short jobs claimed by ${split}`);

    // 2. The kill: whoever claims the long story is SIGKILLed after a few segments.
    const longId = cloud.queue({ id: "long", title: "Long", sfml: LONG });
    await cloud.waitForUpdate(
      (b) => b.id === longId && typeof b.segments_done === "number" && b.segments_done >= 2,
      240_000,
    );
    const [victim] = claimedBy(longId);
    if (!victim) throw new Error("no gateway logged the claim of the long story");
    const survivor = victim === first ? second : first;
    victim.proc.child.kill("SIGKILL");
    await victim.proc.exited();
    const killedAt = Math.max(
      ...cloud.updates
        .filter((u) => u.body.id === longId)
        .map((u) => Number(u.body.segments_done ?? 0)),
    );
    expect(cloud.updates.some((u) => u.body.id === longId && u.body.state === "completed")).toBe(
      false,
    );
    const completed = await cloud.waitForUpdate(
      (b) => b.id === longId && b.state === "completed",
      300_000,
    );
    // Give a duplicate report (what this guards against) time to show up.
    await new Promise((r) => setTimeout(r, 2000));

    expect(cloud.claimCount(longId)).toBe(1);
    const mine = cloud.updates.filter((u) => u.body.id === longId);
    expect(mine.filter((u) => u.body.state === "completed")).toHaveLength(1);
    expect(mine.filter((u) => u.body.state === "failed")).toHaveLength(0);
    const done = mine
      .map((u) => u.body.segments_done)
      .filter((d): d is number => typeof d === "number");
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(Number(completed.body.total_segments)).toBe(8);
    expect(killedAt).toBeLessThan(8);
    expect(logsOf("StoryForge output uploaded", victim.proc.logs)).not.toContain(longId);
    await waitFor(() => logsOf("StoryForge job completed", survivor.proc.logs).includes(longId), {
      timeoutMs: 30_000,
      what: "the survivor's completion log line",
    });
    expect(
      logsOf("StoryForge output uploaded", survivor.proc.logs).filter((j) => j === longId),
    ).toHaveLength(1);
    expect(logsOf("StoryForge job completed", survivor.proc.logs)).toContain(longId);

    // The MP3 in Cloud's bucket: one object per job, and the long one whole.
    const s3 = new S3Client({
      endpoint: cloudS3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: cloudS3.credentials,
    });
    try {
      const listed = await s3.send(
        new ListObjectsV2Command({ Bucket: CLOUD_BUCKET, Prefix: "audio/" }),
      );
      expect(listed.Contents?.map((o) => o.Key).sort()).toEqual(
        [...shortIds, longId].map((id) => `audio/productions/${id}.mp3`).sort(),
      );
      const object = await s3.send(
        new GetObjectCommand({ Bucket: CLOUD_BUCKET, Key: `audio/productions/${longId}.mp3` }),
      );
      const mp3 = await object.Body?.transformToByteArray();
      const info = readMp3Frames(mp3 as Uint8Array);
      // Eight spoken lines of the CPU engine: well over 8 s (about 3.5 s each).
      expect(info.gapless?.durationMs).toBeGreaterThan(8_000);
    } finally {
      s3.destroy();
    }
    const claimedAt = cloud.claims.get(longId) ?? 0;
    console.info(
      `[figures] StoryForge worker takeover: SIGKILL at ${killedAt}/8 segments; claim -> completed by the other gateway ${completed.at - claimedAt} ms`,
    );
    expect(cloud.unauthorized()).toBe(0);
  });
});
