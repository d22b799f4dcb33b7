/**
 * The voice rows on both SQL backends: embedded PGlite and a real PostgreSQL 15 server. Same
 * answers from both, idempotent inserts by (owner, request id), key-cursor listing with filters,
 * deletion reporting whether the prompt is still used, and no database created by reads.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../services/database/migrate.js";
import { openPgliteDatabase } from "../../services/database/pglite-database.js";
import { openPostgresDatabase } from "../../services/database/postgres-database.js";
import type { SqlDatabase } from "../../services/database/sql-database.js";
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
  requestId: undefined,
  createdAt: new Date("2026-01-02T03:04:05.678Z"),
  ...overrides,
});

const backends: Array<[string, () => Promise<SqlDatabase>]> = [
  ["pglite", () => openPgliteDatabase()],
  [
    "postgres",
    async () => openPostgresDatabase({ url: await server.createDatabase(`voices${Date.now()}`) }),
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
      const all = await repo.list({ engine: "", language: "" }, "", 10);
      expect(all.map((v) => v.id)).toEqual([first.id, other.id, german.id].sort());
      expect((await repo.list({ engine: "", language: "EN" }, "", 10)).length).toBe(2);
      expect(
        (await repo.list({ engine: "qwen3-tts", language: "" }, "", 10)).map((v) => v.id),
      ).toEqual([german.id]);
      const page = await repo.list({ engine: "", language: "" }, all[0]?.id ?? "", 1);
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
  expect(await repo.list({ engine: "", language: "" }, "", 10)).toEqual([]);
  expect(await repo.findByRequest("x", "y")).toBeUndefined();
  expect(await repo.delete(newVoiceId())).toBeUndefined();
  expect(await repo.voicesUsingPrompt("a".repeat(64), 1)).toEqual([]);
  expect(opened).toBe(0);
});
