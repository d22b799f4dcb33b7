import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PostgresServer, startPostgresServer } from "../../test/helpers/postgres-server.js";
import { settingDefaults } from "../config/settings.js";
import { gatewaySettings } from "../gateway/gateway-settings.js";
import { createDatabaseProvider } from "./database-provider.js";
import { migrate } from "./migrate.js";
import {
  isTrustedPgliteTemplate,
  isTrustedPgliteTemplateTar,
  openPgliteDatabase,
  type PgliteCreation,
} from "./pglite-database.js";
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

describe("embedded database template", () => {
  // initdb costs 4-5 s of CPU per new database (tens of seconds on a loaded machine); a new
  // database is a copy of the first one's initdb output instead. One initdb here, one copy.
  it("makes the template with the first new database and copies it, pristine, for the next", async () => {
    const root = await mkdtemp(join(tmpdir(), "voxgate-db-template-"));
    const templateDir = join(root, "template");
    const made: PgliteCreation[] = [];
    try {
      const first = await openPgliteDatabase(
        { dataDir: join(root, "one", "db"), templateDir },
        (how) => made.push(how),
      );
      await first.exec("CREATE TABLE written_after (id int); INSERT INTO written_after VALUES (1)");
      await first.close();
      expect(await isTrustedPgliteTemplate(templateDir)).toBe(true);

      const second = await openPgliteDatabase(
        { dataDir: join(root, "two", "db"), templateDir },
        (how) => made.push(how),
      );
      expect(made).toEqual(["initdb", "template"]);
      // The template is initdb's output: nothing the first database wrote afterwards.
      const found = await second.query<{ t: string | null }>(
        "SELECT to_regclass('written_after')::text AS t",
      );
      expect(found.rows).toEqual([{ t: null }]);
      await second.exec("CREATE TABLE items (id int); INSERT INTO items VALUES (7)");
      await second.close();
      expect(existsSync(join(root, "two", "db.partial"))).toBe(false);
      const reopened = await openPgliteDatabase({ dataDir: join(root, "two", "db"), templateDir });
      expect((await reopened.query<{ id: number }>("SELECT id FROM items")).rows).toEqual([
        { id: 7 },
      ]);
      await reopened.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 180_000);

  it("never copies a template others can write, a link, or a directory without a database", async () => {
    const root = await mkdtemp(join(tmpdir(), "voxgate-db-template-"));
    try {
      const good = join(root, "good");
      await mkdir(good, { mode: 0o700 });
      await writeFile(join(good, "PG_VERSION"), "17\n");
      expect(await isTrustedPgliteTemplate(good)).toBe(true);

      const shared = join(root, "shared");
      await cp(good, shared, { recursive: true });
      await chmod(shared, 0o777);
      expect(await isTrustedPgliteTemplate(shared)).toBe(false);

      const link = join(root, "link");
      await symlink(good, link);
      expect(await isTrustedPgliteTemplate(link)).toBe(false);

      const empty = join(root, "empty");
      await mkdir(empty, { mode: 0o700 });
      expect(await isTrustedPgliteTemplate(empty)).toBe(false);
      expect(await isTrustedPgliteTemplate(join(root, "missing"))).toBe(false);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("loads in-memory databases from a tar of the first one's initdb output, pristine", async () => {
    const root = await mkdtemp(join(tmpdir(), "voxgate-db-template-"));
    const templateDir = join(root, "template");
    const made: PgliteCreation[] = [];
    try {
      const first = await openPgliteDatabase({ templateDir }, (how) => made.push(how));
      await first.exec("CREATE TABLE written_after (id int); INSERT INTO written_after VALUES (1)");
      expect(await isTrustedPgliteTemplateTar(`${templateDir}.tar`)).toBe(true);
      const second = await openPgliteDatabase({ templateDir }, (how) => made.push(how));
      expect(made).toEqual(["initdb", "template"]);
      // The tar is initdb's output: nothing the first database wrote, and the two stay apart.
      const found = await second.query<{ t: string | null }>(
        "SELECT to_regclass('written_after')::text AS t",
      );
      expect(found.rows).toEqual([{ t: null }]);
      await second.exec("CREATE TABLE items (id int); INSERT INTO items VALUES (7)");
      expect((await second.query<{ id: number }>("SELECT id FROM items")).rows).toEqual([
        { id: 7 },
      ]);
      expect((await first.query("SELECT id FROM written_after")).rows).toHaveLength(1);
      await Promise.all([first.close(), second.close()]);

      // A tar others can write is never loaded: initdb runs instead.
      await chmod(`${templateDir}.tar`, 0o666);
      expect(await isTrustedPgliteTemplateTar(`${templateDir}.tar`)).toBe(false);
      const third = await openPgliteDatabase({ templateDir }, (how) => made.push(how));
      expect(made).toEqual(["initdb", "template", "initdb"]);
      await third.close();
      // A damaged tar (owned and private, so trusted) falls back to initdb.
      await writeFile(join(root, "bad.tar"), "not a tar", { mode: 0o600 });
      const fourth = await openPgliteDatabase({ templateDir: join(root, "bad") });
      expect((await fourth.query<{ one: number }>("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
      await fourth.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 180_000);
});
