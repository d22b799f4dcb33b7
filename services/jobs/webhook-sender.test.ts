import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { settingDefaults } from "../config/settings.js";
import { migrate } from "../database/migrate.js";
import { openPgliteDatabase } from "../database/pglite-database.js";
import type { SqlDatabase } from "../database/sql-database.js";
import { newJobId } from "./job-ids.js";
import { jobMigrations } from "./job-migrations.js";
import { jobSettings } from "./job-settings.js";
import { createJobStore, type JobStore } from "./job-store.js";
import {
  checkWebhookUrl,
  isWebhookUrlError,
  resolveWebhookHost,
  type WebhookPolicy,
} from "./webhook-allowlist.js";
import { loadWebhookSecret } from "./webhook-secret.js";
import { createWebhookSender } from "./webhook-sender.js";
import { verifyWebhookSignature } from "./webhook-signature.js";
import { createWebhookStore } from "./webhook-store.js";

const log = pino({ level: "silent" });
const SECRET = "test-secret-0123456789abcdef";

interface Received {
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

let db: SqlDatabase;
let store: JobStore;
let server: Server;
let port = 0;
const received: Received[] = [];
/** Status the receiver answers with, per call in order; 200 once the list is used up. */
let answers: number[] = [];

beforeAll(async () => {
  db = await openPgliteDatabase();
  await migrate(db, jobMigrations);
  store = createJobStore({ db });
  server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
    });
    req.on("end", () => {
      received.push({ path: req.url ?? "", headers: req.headers, body });
      const status = answers.shift() ?? 200;
      if (status === 302) res.writeHead(302, { location: `http://127.0.0.1:${port}/elsewhere` });
      else res.writeHead(status);
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
}, 60_000);
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await db?.close();
});
beforeEach(async () => {
  await db.exec("DELETE FROM jobs");
  received.length = 0;
  answers = [];
});

const loopbackPolicy: WebhookPolicy = {
  allowedHosts: ["127.0.0.1"],
  allowPrivate: true,
  maxUrlChars: 2048,
};

/** A job that ended (cancelled) with a webhook, so one delivery is pending. */
async function endedJobWithWebhook(url: string): Promise<string> {
  const { row } = await store.create({
    id: newJobId(),
    kind: "batch",
    spec: { batch: { items: [{ text: "hi" }] } },
    owner: "alice",
    ownerScopes: ["jobs"],
    requestId: "",
    maxAttempts: 3,
    webhookUrl: url,
    labels: { order: "17" },
  });
  await store.cancel(row.id);
  return row.id;
}

function sender(policy: WebhookPolicy = loopbackPolicy, maxAttempts = 3) {
  return createWebhookSender({
    deliveries: createWebhookStore(db),
    jobs: store,
    secret: SECRET,
    policy,
    log,
    senderId: "gw-test",
    maxAttempts,
    retryBaseMs: 0,
    timeoutMs: 5000,
    pollMs: settingDefaults(jobSettings).jobPollMs,
  });
}

async function delivery(jobId: string) {
  const { rows } = await db.query<{
    state: string;
    attempts: number;
    last_status: number;
    last_error: string;
  }>("SELECT state, attempts, last_status, last_error FROM webhook_deliveries WHERE job_id = $1", [
    jobId,
  ]);
  return rows[0];
}

describe("webhook sender", () => {
  it("POSTs the ended job signed with HMAC-SHA256 over <t>.<body>", async () => {
    const jobId = await endedJobWithWebhook(`http://127.0.0.1:${port}/hooks/jobs?x=1`);
    expect(await sender().sendDue()).toBe(1);
    expect(received).toHaveLength(1);
    const call = received[0] as Received;
    expect(call.path).toBe("/hooks/jobs?x=1");
    expect(call.headers["content-type"]).toBe("application/json");
    expect(call.headers["x-voxgate-delivery"]).toBe(jobId);
    // Verified here with an independent HMAC, not with the module under test.
    const header = String(call.headers["x-voxgate-signature"]);
    const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
    expect(match).not.toBeNull();
    const [, t, mac] = match as RegExpExecArray;
    const expected = createHmac("sha256", SECRET).update(`${t}.${call.body}`).digest("hex");
    expect(mac).toBe(expected);
    expect(Math.abs(Number(t) - Date.now() / 1000)).toBeLessThan(300);
    expect(verifyWebhookSignature(SECRET, header, call.body)).toBe(true);
    expect(verifyWebhookSignature("another-secret-0123456789", header, call.body)).toBe(false);
    expect(verifyWebhookSignature(SECRET, header, `${call.body} `)).toBe(false);
    const body = JSON.parse(call.body) as { job: Record<string, unknown> };
    expect(body.job.id).toBe(jobId);
    expect(body.job.state).toBe("JOB_STATE_CANCELLED");
    expect(body.job.labels).toEqual({ order: "17" });
    expect(await delivery(jobId)).toMatchObject({
      state: "DELIVERED",
      attempts: 1,
      last_status: 200,
    });
    // Delivered once: another pass sends nothing.
    expect(await sender().sendDue()).toBe(0);
    expect(received).toHaveLength(1);
  });

  it("retries after the receiver answers 500 and gives up after the attempt limit", async () => {
    const retried = await endedJobWithWebhook(`http://127.0.0.1:${port}/retry`);
    answers = [500, 503];
    const s = sender(loopbackPolicy, 3);
    for (let i = 0; i < 3; i++) await s.sendDue();
    expect(received.map((r) => r.headers["x-voxgate-attempt"])).toEqual(["1", "2", "3"]);
    expect(await delivery(retried)).toMatchObject({
      state: "DELIVERED",
      attempts: 3,
      last_status: 200,
    });

    received.length = 0;
    const failing = await endedJobWithWebhook(`http://127.0.0.1:${port}/down`);
    answers = [500, 500, 500, 500];
    for (let i = 0; i < 5; i++) await s.sendDue();
    expect(received).toHaveLength(3);
    expect(await delivery(failing)).toMatchObject({
      state: "FAILED",
      attempts: 3,
      last_status: 500,
      last_error: "receiver answered 500",
    });
  });

  it("keeps a pending delivery in the database for a later sender (a restarted gateway)", async () => {
    const jobId = await endedJobWithWebhook(`http://127.0.0.1:${port}/later`);
    answers = [500];
    await sender().sendDue();
    expect(await delivery(jobId)).toMatchObject({ state: "PENDING", attempts: 1 });
    // A new sender, as after a restart, finds it and delivers.
    expect(await sender().sendDue()).toBe(1);
    expect(await delivery(jobId)).toMatchObject({ state: "DELIVERED", attempts: 2 });
  });

  it("does not follow redirects", async () => {
    const jobId = await endedJobWithWebhook(`http://127.0.0.1:${port}/moved`);
    answers = [302];
    await sender().sendDue();
    expect(received.map((r) => r.path)).toEqual(["/moved"]);
    expect(await delivery(jobId)).toMatchObject({ state: "PENDING", last_status: 302 });
  });

  it("refuses at send time a host that resolves to a private address", async () => {
    const jobId = await endedJobWithWebhook(`http://127.0.0.1:${port}/private`);
    await sender({ ...loopbackPolicy, allowPrivate: false }).sendDue();
    expect(received).toHaveLength(0);
    const d = await delivery(jobId);
    expect(d?.last_error).toContain("VOXGATE_WEBHOOK_ALLOW_PRIVATE");
  });
});

describe("webhook allowlist", () => {
  const policy: WebhookPolicy = {
    allowedHosts: [
      "hooks.example.com",
      "*.corp.example",
      "127.0.0.1",
      "localhost",
      "169.254.169.254",
      "::1",
    ],
    allowPrivate: false,
    maxUrlChars: 100,
  };
  const refusal = async (url: string, p: WebhookPolicy = policy): Promise<string> => {
    try {
      await resolveWebhookHost(checkWebhookUrl(url, p), p, async () => [
        { address: "93.184.216.34", family: 4 },
      ]);
    } catch (err) {
      expect(isWebhookUrlError(err)).toBe(true);
      return (err as Error).message;
    }
    return "allowed";
  };

  it.each([
    ["http://169.254.169.254/latest/meta-data/", "linkLocal"],
    ["http://127.0.0.1:8080/x", "loopback"],
    ["http://[::1]/x", "loopback"],
  ])("refuses %s (%s) while private addresses are not allowed", async (url, range) => {
    const message = await refusal(url);
    expect(message).toContain(range);
    expect(message).toContain("VOXGATE_WEBHOOK_ALLOW_PRIVATE");
  });

  it("refuses localhost through what it resolves to", async () => {
    const p = policy;
    await expect(resolveWebhookHost(checkWebhookUrl("http://localhost/x", p), p)).rejects.toThrow(
      /localhost resolves to .*loopback.*VOXGATE_WEBHOOK_ALLOW_PRIVATE/,
    );
  });

  it("refuses a name that resolves to a public and a private address", async () => {
    const url = checkWebhookUrl("https://hooks.example.com/x", policy);
    await expect(
      resolveWebhookHost(url, policy, async () => [
        { address: "93.184.216.34", family: 4 },
        { address: "10.0.0.7", family: 4 },
      ]),
    ).rejects.toThrow(/10\.0\.0\.7 \(private\)/);
  });

  it.each([
    ["https://evil.example.net/x", "not in VOXGATE_WEBHOOK_ALLOWED_HOSTS"],
    ["https://corp.example/x", "not in VOXGATE_WEBHOOK_ALLOWED_HOSTS"],
    ["ftp://hooks.example.com/x", "must be http or https"],
    ["https://user:pw@hooks.example.com/x", "credentials"],
    ["not a url", "not an absolute URL"],
    [`https://hooks.example.com/${"a".repeat(100)}`, "VOXGATE_MAX_WEBHOOK_URL_CHARS"],
  ])("refuses %s", async (url, reason) => {
    expect(await refusal(url)).toContain(reason);
  });

  it("allows listed hosts and subdomains of a wildcard entry that resolve to public addresses", async () => {
    expect(await refusal("https://hooks.example.com/x")).toBe("allowed");
    expect(await refusal("https://a.b.corp.example:8443/x")).toBe("allowed");
  });

  it("refuses every webhook while the allowlist is empty, naming the setting", async () => {
    expect(await refusal("https://hooks.example.com/x", { ...policy, allowedHosts: [] })).toContain(
      "VOXGATE_WEBHOOK_ALLOWED_HOSTS",
    );
  });
});

describe("webhook secret", () => {
  it("generates a secret once, keeps it private under the data dir, and reuses it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "voxgate-secret-"));
    try {
      const first = await loadWebhookSecret({ configured: "", dataDir: dir });
      expect(first).toMatch(/^[0-9a-f]{64}$/);
      expect(readFileSync(join(dir, "webhook-secret"), "utf8").trim()).toBe(first);
      expect(statSync(join(dir, "webhook-secret")).mode & 0o777).toBe(0o600);
      expect(await loadWebhookSecret({ configured: "", dataDir: dir })).toBe(first);
      expect(await loadWebhookSecret({ configured: "configured-0123456789", dataDir: dir })).toBe(
        "configured-0123456789",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
