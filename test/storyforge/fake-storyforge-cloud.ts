/**
 * A fake StoryForge Cloud, written from STORYFORGE.md §1.3 (the worker endpoints): it queues
 * produce_audio jobs, hands each out once through an atomic claim, serves SFML and the voice
 * roster, and records every update and event line. Workers must send `x-sf-job-token`; anything
 * else gets Cloud's `401 {"detail":"unauthorized"}`.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A voice of the roster (`sf_voices`). */
export interface FakeVoice {
  id: string;
  engine: string;
  voice_ref: string;
  display_name: string;
}

/** One recorded `POST /api/jobs/update` body, with when it came (epoch ms). */
export interface RecordedUpdate {
  at: number;
  body: Record<string, unknown>;
}

/** The fake Cloud. */
export interface FakeStoryForgeCloud {
  /** Base URL, e.g. `http://127.0.0.1:PORT`. */
  url: string;
  /** The token workers must send. */
  jobToken: string;
  /** Queues a produce_audio job for a story; returns the job id. */
  queue(story: { id: string; title: string; sfml: string }): string;
  /** Roster of voices. */
  voices: FakeVoice[];
  /** Every update, in arrival order. */
  updates: RecordedUpdate[];
  /** Every event line, in arrival order. */
  events: Array<{ at: number; jobId: string; text: string }>;
  /** When each job was claimed (epoch ms). */
  claims: Map<string, number>;
  /** How many times a claim handed out `jobId` (Cloud's claim makes this at most 1). */
  claimCount(jobId: string): number;
  /** Claims refused for a bad token. */
  unauthorized(): number;
  /** Resolves with the first update (past or future) matching `predicate`. */
  waitForUpdate(
    predicate: (body: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<RecordedUpdate>;
  /** Stops the server. */
  close(): Promise<void>;
}

/** Starts the fake on 127.0.0.1. */
export async function startFakeStoryForgeCloud(jobToken: string): Promise<FakeStoryForgeCloud> {
  const stories = new Map<string, { id: string; title: string; sfml: string }>();
  const jobs: Array<{
    id: string;
    storyId: string;
    title: string;
    state: string;
    created: number;
  }> = [];
  const updates: RecordedUpdate[] = [];
  const events: FakeStoryForgeCloud["events"] = [];
  const claims = new Map<string, number>();
  const handedOut = new Map<string, number>();
  const voices: FakeVoice[] = [];
  const waiters = new Set<{
    predicate: (b: Record<string, unknown>) => boolean;
    resolve: (u: RecordedUpdate) => void;
  }>();
  let refused = 0;
  let seq = 0;

  const readBody = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    const parts: Buffer[] = [];
    for await (const part of req) parts.push(part as Buffer);
    const text = Buffer.concat(parts).toString("utf8");
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };

  const server: Server = createServer((req, res) => {
    const send = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    // _require_job_token: only x-sf-job-token opens the worker routes.
    if (req.headers["x-sf-job-token"] !== jobToken) {
      refused++;
      req.resume();
      send(401, { detail: "unauthorized" });
      return;
    }
    const url = new URL(req.url ?? "/", "http://cloud");
    void (async () => {
      if (req.method === "POST" && url.pathname === "/api/jobs/claim") {
        const body = await readBody(req);
        if (!body.kind) return send(200, { ok: false, error: "missing_kind" });
        // FOR UPDATE SKIP LOCKED: the oldest queued job goes to exactly one claimer.
        const job = jobs.find((j) => j.state === "queued");
        if (!job) return send(200, { ok: true, job: null });
        job.state = "running";
        claims.set(job.id, Date.now());
        handedOut.set(job.id, (handedOut.get(job.id) ?? 0) + 1);
        return send(200, {
          ok: true,
          job: {
            id: job.id,
            title: job.title,
            kind: "produce_audio",
            meta_json: JSON.stringify({
              story_id: job.storyId,
              story_title: job.title,
              engine: "",
            }),
            state: "running",
            started_at: Math.floor(Date.now() / 1000),
            finished_at: null,
            total_segments: 0,
            segments_done: 0,
            mp3_url: null,
            sfml_url: `https://example.invalid/sfml/${job.storyId}.sfml`,
            created_at: job.created,
          },
        });
      }
      const sfml = /^\/api\/production\/sfml\/([^/]+)$/.exec(url.pathname);
      if (req.method === "GET" && sfml) {
        const story = stories.get(decodeURIComponent(sfml[1] ?? ""));
        if (!story) return send(200, { ok: false, error: "story_not_found" });
        return send(200, {
          ok: true,
          story_id: story.id,
          title: story.title,
          sfml_text: story.sfml,
        });
      }
      if (req.method === "GET" && url.pathname === "/api/voices") {
        return send(200, {
          ok: true,
          voices: voices.map((v) => ({
            ...v,
            color_hex: "#888888",
            enabled: true,
            sample_text: "",
            sample_url: "",
            voice_traits_json: "{}",
            debut: false,
            updated_at: 0,
          })),
        });
      }
      if (req.method === "POST" && url.pathname === "/api/jobs/update") {
        const body = await readBody(req);
        const update = { at: Date.now(), body };
        updates.push(update);
        const job = jobs.find((j) => j.id === body.id);
        if (job && typeof body.state === "string") job.state = body.state;
        for (const waiter of [...waiters]) {
          if (waiter.predicate(body)) {
            waiters.delete(waiter);
            waiter.resolve(update);
          }
        }
        return send(200, { ok: true });
      }
      if (req.method === "POST" && url.pathname === "/api/jobs/events/append") {
        const body = await readBody(req);
        events.push({
          at: Date.now(),
          jobId: String(body.job_id ?? body.id),
          text: String(body.text),
        });
        return send(200, { ok: true, id: events.length });
      }
      send(404, { detail: "Not Found" });
    })().catch((err: unknown) => send(500, { detail: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    jobToken,
    voices,
    updates,
    events,
    claims,
    claimCount: (jobId) => handedOut.get(jobId) ?? 0,
    unauthorized: () => refused,
    queue(story) {
      stories.set(story.id, story);
      const id = `produce_${1_700_000_000 + ++seq}_${story.id}`;
      jobs.push({
        id,
        storyId: story.id,
        title: story.title,
        state: "queued",
        created: Date.now(),
      });
      return id;
    },
    waitForUpdate(predicate, timeoutMs = 120_000) {
      const found = updates.find((u) => predicate(u.body));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = { predicate, resolve };
        waiters.add(waiter);
        setTimeout(() => {
          if (waiters.delete(waiter))
            reject(new Error(`no matching update within ${timeoutMs} ms`));
        }, timeoutMs).unref();
      });
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
