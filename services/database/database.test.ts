import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PostgresServer, startPostgresServer } from "../../test/helpers/postgres-server.js";
import { settingDefaults } from "../config/settings.js";
import { gatewaySettings } from "../gateway/gateway-settings.js";
import { createDatabaseProvider } from "./database-provider.js";
import { migrate } from "./migrate.js";
import { openPgliteDatabase } from "./pglite-database.js";
import { openPostgresDatabase } from "./postgres-database.js";
import type { SqlDatabase } from "./sql-database.js";

const MIGRATIONS = [
  {
    id: "test/001",
    sql: `CREATE TABLE items (id text PRIMARY KEY, size bigint NOT NULL, meta jsonb,
            body bytea, created timestamptz NOT NULL DEFAULT now());
          CREATE INDEX items_size ON items (size);`,
  },
];

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgresServer();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

const backends: Array<[string, () => Promise<SqlDatabase>]> = [
  ["pglite", () => openPgliteDatabase()],
  [
    "postgres",
    async () =>
      openPostgresDatabase({
        url: await server.createDatabase(`t${Date.now()}`),
        pool: settingDefaults(gatewaySettings),
      }),
  ],
];

describe.each(backends)("%s", (_name, open) => {
  it("returns the same JavaScript types from both adapters", async () => {
    const db = await open();
    try {
      expect(await migrate(db, MIGRATIONS)).toEqual(["test/001"]);
      expect(await migrate(db, MIGRATIONS)).toEqual([]);
      await db.query("INSERT INTO items (id, size, meta, body) VALUES ($1, $2, $3, $4)", [
        "a",
        5_000_000_000,
        { tags: ["x"] },
        new Uint8Array([1, 2, 3]),
      ]);
      const { rows } = await db.query<{
        size: number;
        meta: unknown;
        body: Uint8Array;
        created: Date;
      }>("SELECT size, meta, body, created FROM items");
      expect(rows[0]?.size).toBe(5_000_000_000);
      expect(rows[0]?.meta).toEqual({ tags: ["x"] });
      expect([...(rows[0]?.body ?? [])]).toEqual([1, 2, 3]);
      expect(rows[0]?.created).toBeInstanceOf(Date);
    } finally {
      await db.close();
    }
  });

  it("rolls a failed transaction back and rethrows", async () => {
    const db = await open();
    try {
      await migrate(db, MIGRATIONS);
      await expect(
        db.transaction(async (tx) => {
          await tx.query("INSERT INTO items (id, size) VALUES ('b', 1)");
          throw new Error("boom");
        }),
      ).rejects.toThrow("boom");
      expect((await db.query("SELECT id FROM items")).rowCount).toBe(0);
      const updated = await db.transaction((tx) =>
        tx.query("INSERT INTO items (id, size) VALUES ('c', 1), ('d', 2)"),
      );
      expect(updated.rowCount).toBe(2);
    } finally {
      await db.close();
    }
  });
});

it("refuses a migration list naming one id twice", async () => {
  const db = await openPgliteDatabase();
  try {
    await expect(migrate(db, [...MIGRATIONS, ...MIGRATIONS])).rejects.toThrow(/listed twice/);
  } finally {
    await db.close();
  }
});

describe("embedded database provider", () => {
  const log = pino({ level: "silent" });

  it("stops a first open at close and leaves no half-made database; the next start creates it", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "voxgate-db-"));
    try {
      const first = createDatabaseProvider({
        url: "",
        dataDir,
        migrations: [],
        log,
        pool: settingDefaults(gatewaySettings),
      });
      const opening = first.get();
      expect(first.state).toBe("opening");
      await first.close();
      await expect(opening).rejects.toThrow(/closed while opening/);
      // Nothing that the next start would take for an existing database.
      expect(existsSync(join(dataDir, "db"))).toBe(false);

      const second = createDatabaseProvider({
        url: "",
        dataDir,
        migrations: [],
        log,
        pool: settingDefaults(gatewaySettings),
      });
      expect(second.existing).toBe(false);
      const db = await second.get();
      expect(second.state).toBe("open");
      expect((await db.query<{ one: number }>("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
      await second.close();
      expect(existsSync(join(dataDir, "db"))).toBe(true);
      expect(existsSync(join(dataDir, "db.partial"))).toBe(false);
      const third = createDatabaseProvider({
        url: "",
        dataDir,
        migrations: [],
        log,
        pool: settingDefaults(gatewaySettings),
      });
      expect(third.existing).toBe(true);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
