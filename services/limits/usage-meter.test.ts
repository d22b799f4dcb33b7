import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../database/migrate.js";
import { openPgliteDatabase } from "../database/pglite-database.js";
import type { SqlDatabase } from "../database/sql-database.js";
import { createSqlUsageStore, limitMigrations } from "./sql-usage-store.js";
import type { TokenLimits } from "./token-limits.js";
import { createUsageMeter, type UsageMeterOptions } from "./usage-meter.js";

const silent = pino({ level: "silent" });
// 10:00:30 UTC: 30 s left in the minute.
const START = Date.UTC(2026, 11, 7, 10, 0, 30);

function meter(limits: TokenLimits, more: Partial<UsageMeterOptions> = {}) {
  const clock = { now: START };
  const created = createUsageMeter({
    limits: new Map([["app", limits]]),
    gatewayId: "g1",
    log: silent,
    now: () => clock.now,
    ...more,
  });
  return { meter: created, clock };
}

function refusal(run: () => unknown): ConnectError {
  try {
    run();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected a refusal");
}

describe("usage meter, one gateway", () => {
  it("refuses a call past maxConcurrentCalls and admits again when one ends", () => {
    const { meter: m } = meter({ maxConcurrentCalls: 2 });
    const end1 = m.startCall("app");
    m.startCall("app");
    const error = refusal(() => m.startCall("app"));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toBe(
      'token "app" has 2 calls running; its limit is 2 concurrent calls (maxConcurrentCalls); retry when one ended',
    );
    expect(error.metadata.get("retry-after")).toBe("1");
    end1();
    end1(); // idempotent: frees one slot only
    m.startCall("app");
    expect(() => m.startCall("app")).toThrow(/maxConcurrentCalls/);
  });

  it("refuses past maxRequestsPerMinute until the next minute, with Retry-After", () => {
    const { meter: m, clock } = meter({ maxRequestsPerMinute: 3 });
    for (let i = 0; i < 3; i++) m.startCall("app")();
    const error = refusal(() => m.startCall("app"));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toBe(
      'token "app" made 3 requests this minute; its limit is 3 requests per minute (maxRequestsPerMinute)',
    );
    expect(error.metadata.get("retry-after")).toBe("30");
    clock.now += 30_000;
    expect(() => m.startCall("app")).not.toThrow();
  });

  it("refuses characters past maxCharsPerDay, counting nothing for the refused call", () => {
    const { meter: m } = meter({ maxCharsPerDay: 100 });
    m.chargeChars("app", 60);
    const error = refusal(() => m.chargeChars("app", 41));
    expect(error.rawMessage).toBe(
      'token "app" has 40 of its 100 characters per day left (maxCharsPerDay) and this call has 41',
    );
    // 13.5 h to UTC midnight.
    expect(error.metadata.get("retry-after")).toBe(String(13 * 3600 + 59 * 60 + 30));
    m.chargeChars("app", 40);
    expect(() => m.chargeChars("app", 1)).toThrow(/maxCharsPerDay/);
  });

  it("counts nothing for tokens without limits", () => {
    const { meter: m } = meter({ maxRequestsPerMinute: 1 });
    for (let i = 0; i < 10; i++) m.startCall("other")();
    m.chargeChars("other", 1e9);
    m.startCall("app");
    expect(() => m.startCall("app")).toThrow(/maxRequestsPerMinute/);
  });
});

describe("usage meter, two gateways sharing one database", () => {
  let db: SqlDatabase;
  beforeAll(async () => {
    db = await openPgliteDatabase();
    await migrate(db, limitMigrations);
  }, 60_000);
  afterAll(async () => {
    await db?.close();
  });

  it("holds requests, characters and concurrent calls over both after a flush", async () => {
    const store = createSqlUsageStore({ database: async () => db, staleAfterMs: 60_000 });
    const limits = { maxRequestsPerMinute: 4, maxCharsPerDay: 100, maxConcurrentCalls: 3 };
    const a = meter(limits, { store, gatewayId: "a" }).meter;
    const b = meter(limits, { store, gatewayId: "b" }).meter;
    a.startCall("app")();
    a.startCall("app")();
    a.chargeChars("app", 70);
    const running = a.startCall("app"); // 3 requests, 1 running on a
    await a.flush();
    await b.flush();
    b.startCall("app"); // the 4th request of the minute, running on b
    expect(() => b.chargeChars("app", 31)).toThrow(/30 of its 100 characters per day left/);
    await b.flush();
    await a.flush();
    expect(() => a.startCall("app")).toThrow(
      'token "app" made 4 requests this minute; its limit is 4 requests per minute',
    );
    expect(() => a.chargeChars("app", 31)).toThrow(/maxCharsPerDay/);
    running();
    expect(db.kind).toBe("pglite");
  });

  it("counts other gateways' running calls and forgets a gateway that stopped reporting", async () => {
    await db.query("DELETE FROM token_in_flight");
    const store = createSqlUsageStore({ database: async () => db, staleAfterMs: 300 });
    const limits = { maxConcurrentCalls: 2 };
    const a = meter(limits, { store, gatewayId: "c" }).meter;
    const b = meter(limits, { store, gatewayId: "d" }).meter;
    a.startCall("app");
    a.startCall("app");
    await a.flush();
    await b.flush();
    expect(() => b.startCall("app")).toThrow(
      'token "app" has 2 calls running; its limit is 2 concurrent calls',
    );
    // Gateway c dies (stops flushing): after staleAfterMs its calls no longer count.
    await new Promise((resolve) => setTimeout(resolve, 400));
    await b.flush();
    expect(() => b.startCall("app")).not.toThrow();
  });
});
