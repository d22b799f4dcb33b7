import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { settingDefaults } from "../config/settings.js";
import { createDatabaseProvider, type DatabaseProvider } from "../database/database-provider.js";
import { gatewaySettings } from "../gateway/gateway-settings.js";
import { createWorkerStore, storyforgeMigrations, type WorkerStore } from "./worker-store.js";

const LONG_MS = 60_000;

let database: DatabaseProvider;
let store: WorkerStore;

beforeAll(async () => {
  database = createDatabaseProvider({
    pool: settingDefaults(gatewaySettings),
    url: "memory:",
    dataDir: "",
    migrations: storyforgeMigrations,
    log: pino({ level: "silent" }),
  });
  store = createWorkerStore(database);
  await database.get();
}, 120_000);

afterAll(async () => {
  await database?.close();
});

const row = (id: string) => ({ cloudJobId: id, storyId: `story-${id}`, title: id });

describe("worker rows shared between gateways", () => {
  it("a row is inserted once; a held lease is neither acquired by another owner nor lost", async () => {
    expect(await store.insert(row("a"), "gw-1", LONG_MS)).toMatchObject({ state: "claimed" });
    expect(await store.insert(row("a"), "gw-2", LONG_MS)).toBeUndefined();
    expect(await store.acquire("gw-2", LONG_MS)).toEqual([]);
    expect(await store.renew("gw-2", LONG_MS)).toEqual(new Set());
    expect(await store.renew("gw-1", LONG_MS)).toEqual(new Set(["a"]));
    expect((await store.acquire("gw-1", LONG_MS)).map((r) => r.cloudJobId)).toEqual(["a"]);
    expect(await store.finish("a", "gw-2", "completed", "x")).toBe(false);
    expect(await store.finish("a", "gw-1", "completed", "https://b/a.mp3")).toBe(true);
    expect(await store.renew("gw-1", LONG_MS)).toEqual(new Set());
    expect(await store.get("a")).toMatchObject({ state: "done", mp3Url: "https://b/a.mp3" });
  });

  it("an expired lease cannot be renewed by its old owner; another owner takes it over", async () => {
    await store.insert(row("b"), "gw-1", 1);
    // The lease was 1 ms; any wait makes it expire, however slow the machine.
    await new Promise((r) => setTimeout(r, 20));
    expect(await store.renew("gw-1", LONG_MS)).toEqual(new Set());
    expect((await store.acquire("gw-2", LONG_MS)).map((r) => r.cloudJobId)).toEqual(["b"]);
    expect(await store.renew("gw-1", LONG_MS)).toEqual(new Set());
    expect(await store.renew("gw-2", LONG_MS)).toEqual(new Set(["b"]));
    expect(await store.setRender("b", "gw-1", "job-1", 3)).toBe(false);
    expect(await store.setRender("b", "gw-2", "job-1", 3)).toBe(true);
    await store.setReported("b", "gw-2", 2);
    await store.setReported("b", "gw-2", 1);
    expect(await store.get("b")).toMatchObject({ segmentsReported: 2, voxgateJobId: "job-1" });
  });
});
