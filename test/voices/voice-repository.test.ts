/**
 * The voice rows on both SQL backends: embedded PGlite and a real PostgreSQL 15 server. Same
 * answers from both, idempotent inserts by (owner, request id), key-cursor listing with filters,
 * deletion reporting whether the prompt is still used, and no database created by reads.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { settingDefaults } from "../../services/config/settings.js";
import { migrate } from "../../services/database/migrate.js";
import { openPgliteDatabase } from "../../services/database/pglite-database.js";
import { openPostgresDatabase } from "../../services/database/postgres-database.js";
import type { SqlDatabase } from "../../services/database/sql-database.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import { newVoiceId } from "../../services/voices/voice-id.js";
import { voiceMigrations } from "../../services/voices/voice-migrations.js";
import { createVoiceRepository, type VoiceRecord } from "../../services/voices/voice-repository.js";
import { type PostgresServer, startPostgresServer } from "../helpers/postgres-server.js";

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgresServer();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

const record = (overrides: Partial<VoiceRecord>): VoiceRecord => ({
  id: newVoiceId(),
  name: "Voice",
  engine: "espeak-ng",
  modelFamily: "espeak-ng",
  modelSize: "",
  language: "en-US",
  description: "",
  labels: { team: "a" },
  promptDigest: "a".repeat(64),
  promptSizeBytes: 5_000_000_000,
  referenceDigest: "b".repeat(64),
  referenceContentType: "audio/wav",
  referenceText: "",
  analysis: undefined,
  owner: "tester",
  shared: false,
  requestId: undefined,
  createdAt: new Date("2026-01-02T03:04:05.678Z"),
  ...overrides,
});

const ALL = { tenant: "admin", all: true };

const backends: Array<[string, () => Promise<SqlDatabase>]> = [
  ["pglite", () => openPgliteDatabase()],
  [
    "postgres",
    async () =>
      openPostgresDatabase({
        url: await server.createDatabase(`voices${Date.now()}`),
        pool: settingDefaults(gatewaySettings),
      }),
  ],
];

describe.each(backends)("%s", (_name, open) => {
  it("stores, lists, finds by request id and deletes voices", async () => {
    const db = await open();
    try {
      await migrate(db, voiceMigrations);
      const repo = createVoiceRepository({ get: async () => db, existing: true });
      const first = await repo.insert(record({ requestId: "r1", language: "en-US" }));
      expect(first.promptSizeBytes).toBe(5_000_000_000);
      expect(first.labels).toEqual({ team: "a" });
      expect(first.createdAt.toISOString()).toBe("2026-01-02T03:04:05.678Z");
      expect(first.analysis).toBeUndefined();
      // Same owner and request id: the first voice comes back, nothing new is stored.
      const retry = await repo.insert(record({ requestId: "r1", name: "Other" }));
      expect(retry.id).toBe(first.id);
      // Another owner may use the same request id.
      const other = await repo.insert(record({ requestId: "r1", owner: "someone-else" }));
      expect(other.id).not.toBe(first.id);
      const german = await repo.insert(
        record({ language: "de", engine: "qwen3-tts", promptDigest: "c".repeat(64) }),
      );

      expect((await repo.findByRequest("tester", "r1"))?.id).toBe(first.id);
      expect(await repo.findByRequest("tester", "r2")).toBeUndefined();
      const all = await repo.list({ engine: "", language: "" }, "", 10, ALL);
      expect(all.map((v) => v.id)).toEqual([first.id, other.id, german.id].sort());
      expect((await repo.list({ engine: "", language: "EN" }, "", 10, ALL)).length).toBe(2);
      expect(
        (await repo.list({ engine: "qwen3-tts", language: "" }, "", 10, ALL)).map((v) => v.id),
      ).toEqual([german.id]);
      const page = await repo.list({ engine: "", language: "" }, all[0]?.id ?? "", 1, ALL);
      expect(page.map((v) => v.id)).toEqual([all[1]?.id]);

      const analyzed = await repo.setAnalysis(first.id, { durationMs: "1500", medianF0Hz: 180 });
      expect(analyzed?.analysis).toEqual({ durationMs: "1500", medianF0Hz: 180 });
      expect(await repo.voicesUsingPrompt("a".repeat(64), 5)).toEqual([first.id, other.id].sort());

      const gone = await repo.delete(first.id);
      expect(gone?.record.id).toBe(first.id);
      expect(gone?.promptInUse).toBe(true);
      const last = await repo.delete(other.id);
      expect(last?.promptInUse).toBe(false);
      expect(last?.referenceInUse).toBe(true);
      expect(await repo.delete(other.id)).toBeUndefined();
      expect(await repo.get(first.id)).toBeUndefined();
    } finally {
      await db.close();
    }
  }, 60_000);

  it("keeps each tenant to its own voices and prompts, shared voices aside", async () => {
    const db = await open();
    try {
      // A voice row from before tenants, without an owner: the tenant migration gives it to
      // the "default" tenant; a row with a token name stays with that name (its default tenant).
      const first = voiceMigrations[0];
      if (!first) throw new Error("no voice migrations");
      await migrate(db, [first]);
      await db.query(
        `INSERT INTO voices (id, name, engine, model_family, model_size, language, description,
           labels, prompt_digest, prompt_size_bytes, reference_digest, reference_content_type,
           reference_text, owner)
         VALUES ($1, 'Old', 'e', 'f', '', '', '', '{}', $2, 1, $2, 'audio/wav', '', ''),
                ($3, 'Old2', 'e', 'f', '', '', '', '{}', $2, 1, $2, 'audio/wav', '', 'sf')`,
        ["vc_legacy0", "d".repeat(64), "vc_legacy1"],
      );
      await migrate(db, voiceMigrations);
      const repo = createVoiceRepository({ get: async () => db, existing: true });
      expect(await repo.get("vc_legacy0")).toMatchObject({ owner: "default", shared: false });
      expect(await repo.get("vc_legacy1")).toMatchObject({ owner: "sf", shared: false });

      const a = await repo.insert(record({ owner: "acme", promptDigest: "1".repeat(64) }));
      const b = await repo.insert(record({ owner: "bolt", promptDigest: "2".repeat(64) }));
      const shared = await repo.insert(
        record({ owner: "bolt", promptDigest: "3".repeat(64), shared: true }),
      );
      const seen = async (tenant: string) =>
        (await repo.list({ engine: "", language: "" }, "", 10, { tenant, all: false }))
          .map((v) => v.id)
          .sort();
      expect(await seen("acme")).toEqual([a.id, shared.id].sort());
      expect(await seen("bolt")).toEqual([b.id, shared.id].sort());
      expect((await repo.list({ engine: "", language: "" }, "", 10, ALL)).length).toBe(5);

      expect(await repo.promptAccess("1".repeat(64), "acme")).toEqual({
        owned: true,
        shared: false,
      });
      expect(await repo.promptAccess("1".repeat(64), "bolt")).toEqual({
        owned: false,
        shared: false,
      });
      expect(await repo.promptAccess("3".repeat(64), "acme")).toEqual({
        owned: false,
        shared: true,
      });
      await repo.addPromptOwner("4".repeat(64), "acme");
      await repo.addPromptOwner("4".repeat(64), "acme");
      await repo.addPromptOwner("4".repeat(64), "bolt");
      expect(await repo.ownedPrompts("acme", "", 10)).toEqual(["1".repeat(64), "4".repeat(64)]);
      expect(await repo.ownedPrompts("acme", "1".repeat(64), 10)).toEqual(["4".repeat(64)]);
      expect(await repo.removePromptOwner("4".repeat(64), "acme")).toBe(1);
      expect((await repo.promptAccess("4".repeat(64), "acme")).owned).toBe(false);
      expect(await repo.removePromptOwner("4".repeat(64), undefined)).toBe(0);
      expect(await repo.voicesUsingPrompt("3".repeat(64), 5, "acme")).toEqual([]);
      expect(await repo.voicesUsingPrompt("3".repeat(64), 5, "bolt")).toEqual([shared.id]);

      expect((await repo.setShared(b.id, true))?.shared).toBe(true);
      expect(await seen("acme")).toEqual([a.id, b.id, shared.id].sort());
    } finally {
      await db.close();
    }
  }, 60_000);
});

it("never opens a database that does not exist yet just to read", async () => {
  let opened = 0;
  const repo = createVoiceRepository({
    existing: false,
    get: async () => {
      opened++;
      throw new Error("must not open");
    },
  });
  expect(await repo.get(newVoiceId())).toBeUndefined();
  expect(await repo.list({ engine: "", language: "" }, "", 10, ALL)).toEqual([]);
  expect(await repo.findByRequest("x", "y")).toBeUndefined();
  expect(await repo.delete(newVoiceId())).toBeUndefined();
  expect(await repo.voicesUsingPrompt("a".repeat(64), 1)).toEqual([]);
  expect(await repo.promptAccess("a".repeat(64), "t")).toEqual({ owned: false, shared: false });
  expect(await repo.ownedPrompts("t", "", 10)).toEqual([]);
  expect(opened).toBe(0);
});
