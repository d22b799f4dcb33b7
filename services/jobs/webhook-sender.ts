import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { toJsonString } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { JobSchema } from "../../gen/voxgate/v1/job_pb.js";
import { retryDelayMs } from "./job-backoff.js";
import { jobFromRow } from "./job-row.js";
import type { JobStore } from "./job-store.js";
import {
  checkWebhookUrl,
  type HostResolver,
  resolveWebhookHost,
  type WebhookAddress,
  type WebhookPolicy,
} from "./webhook-allowlist.js";
import { signWebhook, WEBHOOK_SIGNATURE_HEADER } from "./webhook-signature.js";
import type { WebhookDelivery, WebhookStore } from "./webhook-store.js";

/** Outcome of one webhook call. */
export type WebhookOutcome = "delivered" | "retry" | "given_up";

/** Options of {@link createWebhookSender}. */
export interface WebhookSenderOptions {
  /** Pending deliveries. */
  deliveries: WebhookStore;
  /** Jobs, read to build each body. */
  jobs: JobStore;
  /** HMAC-SHA256 key of the signatures. */
  secret: string;
  /** Allowlist, checked again at every call (settings may have changed since the job was made). */
  policy: WebhookPolicy;
  /** Root logger. */
  log: Logger;
  /** Sender id written into delivery leases (the runner id does). */
  senderId: string;
  /** Time a receiver has to answer, in ms (setting webhookTimeoutMs). */
  timeoutMs: number;
  /** Calls before a delivery is given up (setting webhookMaxAttempts). */
  maxAttempts: number;
  /** Backoff before the second call, in ms, doubling up to one hour (setting webhookRetryBaseMs). */
  retryBaseMs: number;
  /**
   * Observes each call's outcome: `delivered` (2xx), `retry` (failed, tried again later) or
   * `given_up` (failed the last allowed time).
   */
  onDelivery?(outcome: WebhookOutcome): void;
  /** Interval of looking for due deliveries, in ms (setting jobPollMs). */
  pollMs: number;
  /** Deliveries sent at once. @default 4 */
  concurrency?: number;
  /** Host resolver (tests). @default dns.lookup */
  resolve?: HostResolver;
}

/** How one call went. */
interface CallResult {
  status: number;
  error: string;
}

/**
 * Calls the webhooks of ended jobs: a signed JSON POST `{"job": …}` per job, retried with backoff
 * until a 2xx answer or the attempt limit. Deliveries live in SQL, so a restarted or another
 * gateway finishes what a stopped one left. Redirects are never followed and only addresses that
 * passed the allowlist check are connected to.
 */
export interface WebhookSender {
  /** Starts polling for due deliveries. */
  start(): void;
  /** Sends every delivery due now (one pass); resolves with how many were attempted. */
  sendDue(): Promise<number>;
  /** Stops polling and waits for calls under way; idempotent. */
  shutdown(): Promise<void>;
}

const MAX_ERROR_CHARS = 500;
const MAX_RETRY_MS = 3_600_000;

/** Creates a sender; nothing is sent until {@link WebhookSender.start} or `sendDue`. */
export function createWebhookSender(options: WebhookSenderOptions): WebhookSender {
  const log = options.log.child({ component: "webhooks" });
  const { timeoutMs, maxAttempts, retryBaseMs, pollMs } = options;
  const concurrency = options.concurrency ?? 4;
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<number> | undefined;
  let stopping: Promise<void> | undefined;

  const call = async (delivery: WebhookDelivery): Promise<CallResult> => {
    const row = await options.jobs.get(delivery.jobId);
    if (!row) return { status: 0, error: "the job no longer exists" };
    const body = JSON.stringify({ job: JSON.parse(toJsonString(JobSchema, jobFromRow(row))) });
    let url: URL;
    let addresses: WebhookAddress[];
    try {
      url = checkWebhookUrl(delivery.url, options.policy);
      addresses = await resolveWebhookHost(url, options.policy, options.resolve);
    } catch (err) {
      return { status: 0, error: (err as Error).message };
    }
    const signature = signWebhook(options.secret, body, Math.floor(Date.now() / 1000));
    const pinned = addresses[0] as WebhookAddress;
    // Connect to the address that passed the check, never to a second DNS answer.
    const lookup: LookupFunction = (_host, opts, callback) => {
      if ((opts as { all?: boolean }).all) {
        (callback as unknown as (e: null, a: WebhookAddress[]) => void)(null, [pinned]);
      } else {
        callback(null, pinned.address, pinned.family);
      }
    };
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise<CallResult>((resolve) => {
      const req = send(
        url,
        {
          method: "POST",
          lookup,
          signal: AbortSignal.any([stop.signal, AbortSignal.timeout(timeoutMs)]),
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            "user-agent": "voxgate-webhook/1",
            [WEBHOOK_SIGNATURE_HEADER]: signature,
            "x-voxgate-delivery": delivery.jobId,
            "x-voxgate-attempt": String(delivery.attempt),
          },
        },
        (res) => {
          // The answer's body is not needed; drain it so the socket is freed.
          res.resume();
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            resolve({
              status,
              error: status >= 200 && status < 300 ? "" : `receiver answered ${status}`,
            });
          });
          res.on("error", (err) => resolve({ status: res.statusCode ?? 0, error: err.message }));
        },
      );
      req.on("error", (err) =>
        resolve({
          status: 0,
          error:
            err.name === "TimeoutError" || err.name === "AbortError"
              ? `no answer within ${timeoutMs} ms (VOXGATE_WEBHOOK_TIMEOUT_MS)`
              : err.message,
        }),
      );
      req.end(body);
    });
  };

  const deliver = async (delivery: WebhookDelivery) => {
    const result = await call(delivery);
    const error = result.error.slice(0, MAX_ERROR_CHARS);
    const entry = { jobId: delivery.jobId, attempt: delivery.attempt, status: result.status };
    if (!error) {
      await options.deliveries.delivered(delivery, options.senderId, result.status);
      options.onDelivery?.("delivered");
      log.info(entry, "webhook delivered");
    } else if (delivery.attempt >= maxAttempts) {
      await options.deliveries.giveUp(delivery, options.senderId, result.status, error);
      options.onDelivery?.("given_up");
      log.warn({ ...entry, error }, "webhook given up (VOXGATE_WEBHOOK_MAX_ATTEMPTS)");
    } else {
      const delayMs = retryDelayMs(delivery.attempt, { baseMs: retryBaseMs, maxMs: MAX_RETRY_MS });
      await options.deliveries.retry(delivery, options.senderId, delayMs, result.status, error);
      options.onDelivery?.("retry");
      log.info({ ...entry, error, delayMs }, "webhook failed; retrying after backoff");
    }
  };

  const sendDue = async (): Promise<number> => {
    // A delivery lease outlives the longest call, so no second sender takes it meanwhile.
    const due = await options.deliveries.claimDue(
      options.senderId,
      concurrency,
      timeoutMs * 2 + 5000,
    );
    await Promise.all(
      due.map((d) =>
        deliver(d).catch((err: unknown) =>
          log.warn({ err, jobId: d.jobId }, "webhook bookkeeping failed"),
        ),
      ),
    );
    return due.length;
  };

  const tick = () => {
    if (stop.signal.aborted || pass) return;
    pass = (async () => {
      let total = 0;
      // Keep going while full batches come back: a backlog drains without waiting a poll each.
      for (;;) {
        const n = await sendDue();
        total += n;
        if (n < concurrency || stop.signal.aborted) return total;
      }
    })()
      .catch((err: unknown) => {
        log.warn({ err }, "sending webhooks failed");
        return 0;
      })
      .finally(() => {
        pass = undefined;
      });
  };

  return {
    start() {
      if (timer || stop.signal.aborted) return;
      timer = setInterval(tick, pollMs);
      tick();
    },
    sendDue,
    shutdown() {
      stopping ??= (async () => {
        clearInterval(timer);
        stop.abort();
        await pass;
      })();
      return stopping;
    },
  };
}
