/**
 * The worker's side of StoryForge Cloud's job API (STORYFORGE.md §1.3): claim, SFML, voices,
 * update and event lines, each authenticated with `x-sf-job-token`. Cloud is an outside server:
 * answers are size-limited and checked for the fields used.
 */

/** A claimed Cloud job (the fields the worker reads). */
export interface CloudJob {
  /** Cloud job id, e.g. `produce_1700000000_story-1`. */
  id: string;
  /** Title. */
  title: string;
  /** `meta_json` parsed: `story_id`, `engine`, … */
  meta: Record<string, unknown>;
}

/** A Cloud voice (`sf_voices`). */
export interface CloudVoice {
  id: string;
  engine: string;
  voiceRef: string;
  displayName: string;
}

/** Fields of `POST /api/jobs/update`; absent ones are left alone by Cloud. */
export interface CloudJobUpdate {
  state?: "running" | "completed" | "failed" | "aborted";
  total_segments?: number;
  segments_done?: number;
  mp3_url?: string;
  error_text?: string;
  started_at?: number;
  finished_at?: number;
}

/** Calls Cloud. */
export interface CloudClient {
  /** Claims the oldest queued produce_audio job, or undefined when none waits. */
  claim(signal: AbortSignal): Promise<CloudJob | undefined>;
  /** The story's SFML text. */
  sfml(storyId: string, signal: AbortSignal): Promise<string>;
  /** The voice roster. */
  voices(signal: AbortSignal): Promise<CloudVoice[]>;
  /** Updates a job. */
  update(id: string, fields: CloudJobUpdate, signal: AbortSignal): Promise<void>;
  /** Appends a progress line to a job's event stream. */
  event(id: string, text: string, signal: AbortSignal): Promise<void>;
}

/** Raised for a Cloud answer that is not what the contract says (HTTP error, `ok:false`, shape). */
export class CloudError extends Error {
  override readonly name = "CloudError";
  /** Whether the failure is about this job (refuse it) rather than Cloud being unreachable. */
  readonly permanent: boolean;
  constructor(message: string, permanent: boolean) {
    super(message);
    this.permanent = permanent;
  }
}

/** Options of {@link createCloudClient}. */
export interface CloudClientOptions {
  /** Cloud's base URL, without a trailing `/`. */
  baseUrl: string;
  /** SF_JOB_TOKEN. */
  jobToken: string;
  /** Deadline of one call, in ms. @default 20000 */
  timeoutMs?: number;
  /** Largest answer read, in bytes (SFML is at most 20,000 characters). @default 4 MiB */
  maxAnswerBytes?: number;
}

/** Creates the client. */
export function createCloudClient(options: CloudClientOptions): CloudClient {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const maxBytes = options.maxAnswerBytes ?? 4 * 1024 * 1024;

  async function call(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    let res: Response;
    try {
      res = await fetch(`${options.baseUrl}${path}`, {
        method,
        headers: {
          "x-sf-job-token": options.jobToken,
          accept: "application/json",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        redirect: "error",
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      });
    } catch (err) {
      throw new CloudError(`${method} ${path}: ${(err as Error).message}`, false);
    }
    const declared = Number(res.headers.get("content-length") ?? Number.NaN);
    if (declared > maxBytes) {
      await res.body?.cancel();
      throw new CloudError(`${method} ${path}: answer of ${declared} bytes is too large`, false);
    }
    const text = await res.text();
    if (text.length > maxBytes) throw new CloudError(`${method} ${path}: answer too large`, false);
    if (!res.ok) {
      throw new CloudError(
        `${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`,
        res.status < 500,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new CloudError(`${method} ${path}: not JSON`, false);
    }
    if (typeof json !== "object" || json === null)
      throw new CloudError(`${method} ${path}: not an object`, false);
    const object = json as Record<string, unknown>;
    if (object.ok === false) {
      throw new CloudError(
        `${method} ${path}: ${String(object.error ?? "ok:false").slice(0, 300)}`,
        true,
      );
    }
    return object;
  }

  const str = (value: unknown) => (typeof value === "string" ? value : "");

  return {
    async claim(signal) {
      const answer = await call("POST", "/api/jobs/claim", { kind: "produce_audio" }, signal);
      const job = answer.job;
      if (job === null || job === undefined) return undefined;
      if (typeof job !== "object") throw new CloudError("claim: job is not an object", false);
      const row = job as Record<string, unknown>;
      const id = str(row.id);
      if (!id || id.length > 256) throw new CloudError("claim: job without a usable id", false);
      let meta: Record<string, unknown> = {};
      try {
        const parsed =
          typeof row.meta_json === "string" ? JSON.parse(row.meta_json) : row.meta_json;
        if (parsed && typeof parsed === "object") meta = parsed as Record<string, unknown>;
      } catch {
        // A job with unreadable meta fails below (no story id).
      }
      return { id, title: str(row.title), meta };
    },
    async sfml(storyId, signal) {
      const answer = await call(
        "GET",
        `/api/production/sfml/${encodeURIComponent(storyId)}`,
        undefined,
        signal,
      );
      const text = str(answer.sfml_text);
      if (!text) throw new CloudError("missing_sfml", true);
      return text;
    },
    async voices(signal) {
      const answer = await call("GET", "/api/voices", undefined, signal);
      if (!Array.isArray(answer.voices)) throw new CloudError("voices: no voices list", false);
      return answer.voices.flatMap((raw): CloudVoice[] => {
        if (typeof raw !== "object" || raw === null) return [];
        const v = raw as Record<string, unknown>;
        return [
          {
            id: str(v.id),
            engine: str(v.engine),
            voiceRef: str(v.voice_ref),
            displayName: str(v.display_name),
          },
        ];
      });
    },
    async update(id, fields, signal) {
      await call("POST", "/api/jobs/update", { id, ...fields }, signal);
    },
    async event(id, text, signal) {
      await call(
        "POST",
        "/api/jobs/events/append",
        { job_id: id, ts: Date.now() / 1000, engine: "voxgate", text: text.slice(0, 6000) },
        signal,
      );
    },
  };
}
