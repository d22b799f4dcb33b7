import type { Migration, SqlDatabase } from "./sql-database.js";

// Any constant works; it only has to be the same in every gateway sharing the database.
const MIGRATION_LOCK_KEY = 7_242_011;

/**
 * Applies the migrations not yet recorded, in order, each in its own transaction. Several gateways
 * starting at once against one server take turns (a transaction-scoped advisory lock), so each
 * migration runs exactly once.
 *
 * @returns ids of the migrations applied now.
 */
export async function migrate(
  db: SqlDatabase,
  migrations: readonly Migration[],
): Promise<string[]> {
  const seen = new Set<string>();
  for (const m of migrations) {
    if (seen.has(m.id)) throw new Error(`migration ${m.id} is listed twice`);
    seen.add(m.id);
  }
  const applied: string[] = [];
  await db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         id text PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const done = await tx.query<{ id: string }>("SELECT id FROM schema_migrations");
    const doneIds = new Set(done.rows.map((r) => r.id));
    for (const m of migrations) {
      if (doneIds.has(m.id)) continue;
      await tx.exec(m.sql);
      await tx.query("INSERT INTO schema_migrations (id) VALUES ($1)", [m.id]);
      applied.push(m.id);
    }
  });
  return applied;
}
