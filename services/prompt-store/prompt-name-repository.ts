import type { SqlDatabase } from "../database/sql-database.js";

/** A named prompt as stored. */
export interface PromptNameRecord {
  /** Owner (token name) the name belongs to. */
  owner: string;
  /** Name, unique per owner. */
  name: string;
  /** sha256 of the prompt bytes. */
  digest: string;
  /** Free words for filtering. */
  tags: string[];
  /** Key/values for search (character, emotion, intensity, …). */
  labels: Record<string, string>;
  /** Model family that made the prompt. */
  modelFamily: string;
  /** Model size within the family. */
  modelSize: string;
  /** Engine that made the prompt. */
  engine: string;
  /** Transcript of the reference audio. */
  referenceText: string;
  /** Size of the prompt, in bytes. */
  sizeBytes: number;
  /** Length of the reference audio, in ms; 0 when unknown. */
  referenceDurationMs: number;
  /** When the name was given. */
  createdAt: Date;
}

/** Filters of {@link PromptNameRepository.list}; empty ones match everything. */
export interface PromptNameFilter {
  /** Every one of these tags must be present. */
  tags: readonly string[];
  /** Labels that must be equal (case-insensitive). */
  labels: Readonly<Record<string, string>>;
  /** Text the name, tags or labels must contain (case-insensitive). */
  query: string;
  /** Exact model family. */
  modelFamily: string;
}

/** Where the name rows live (opened lazily, like the voice rows). */
export interface PromptNameDatabase {
  /** Opens (creating and migrating when needed) the database. */
  get(): Promise<SqlDatabase>;
  /** Whether the database may already hold rows. */
  readonly existing: boolean;
}

/** Prompt names in SQL. */
export interface PromptNameRepository {
  /**
   * Gives a name. With `replace`, an existing row of that name is overwritten and returned as
   * `previous`; without it, an existing name resolves `{ conflict: true }` and nothing changes.
   */
  put(
    record: PromptNameRecord,
    replace: boolean,
  ): Promise<
    { conflict: true } | { conflict: false; record: PromptNameRecord; previous?: PromptNameRecord }
  >;
  /** The row of `owner`'s `name`, or undefined. */
  get(owner: string, name: string): Promise<PromptNameRecord | undefined>;
  /** Up to `limit` of `owner`'s rows with names after `afterName`, in name order. */
  list(
    owner: string,
    filter: PromptNameFilter,
    afterName: string,
    limit: number,
  ): Promise<PromptNameRecord[]>;
  /** Removes a name; resolves the removed row, or undefined when there was none. */
  delete(owner: string, name: string): Promise<PromptNameRecord | undefined>;
  /** How many names point at `digest`: of `owner` only, or of any owner when it is undefined. */
  countUsing(digest: string, owner?: string): Promise<number>;
  /** How many names `owner` has (the relay's `prompts_count`). */
  count(owner: string): Promise<number>;
}

interface Row {
  owner: string;
  name: string;
  digest: string;
  tags: string[] | null;
  labels: Record<string, string> | null;
  model_family: string;
  model_size: string;
  engine: string;
  reference_text: string;
  size_bytes: number;
  reference_duration_ms: number;
  created_at: Date;
}

const COLUMNS = `owner, name, digest, tags, labels, model_family, model_size, engine,
  reference_text, size_bytes, reference_duration_ms, created_at`;

function fromRow(row: Row): PromptNameRecord {
  return {
    owner: row.owner,
    name: row.name,
    digest: row.digest,
    tags: row.tags ?? [],
    labels: row.labels ?? {},
    modelFamily: row.model_family,
    modelSize: row.model_size,
    engine: row.engine,
    referenceText: row.reference_text,
    sizeBytes: Number(row.size_bytes),
    referenceDurationMs: Number(row.reference_duration_ms),
    createdAt: row.created_at,
  };
}

/** Creates the repository over `database` (tables from `promptNameMigrations`). */
export function createPromptNameRepository(database: PromptNameDatabase): PromptNameRepository {
  let written = false;
  const forRead = async (): Promise<SqlDatabase | undefined> =>
    database.existing || written ? database.get() : undefined;
  const forWrite = async (): Promise<SqlDatabase> => {
    const db = await database.get();
    written = true;
    return db;
  };
  const values = (r: PromptNameRecord) => [
    r.owner,
    r.name,
    r.digest,
    // Arrays go in as JSON text: an array parameter would be taken for a SQL array.
    JSON.stringify(r.tags),
    r.labels,
    r.modelFamily,
    r.modelSize,
    r.engine,
    r.referenceText,
    r.sizeBytes,
    r.referenceDurationMs,
    r.createdAt,
  ];

  return {
    async put(record, replace) {
      const db = await forWrite();
      return db.transaction(async (tx) => {
        const { rows: old } = await tx.query<Row>(
          `SELECT ${COLUMNS} FROM prompt_names WHERE owner = $1 AND name = $2 FOR UPDATE`,
          [record.owner, record.name],
        );
        const previous = old[0] ? fromRow(old[0]) : undefined;
        if (previous && !replace) return { conflict: true as const };
        const { rows } = await tx.query<Row>(
          `INSERT INTO prompt_names (${COLUMNS})
           VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12)
           ON CONFLICT (owner, name) DO UPDATE SET
             digest = EXCLUDED.digest, tags = EXCLUDED.tags, labels = EXCLUDED.labels,
             model_family = EXCLUDED.model_family, model_size = EXCLUDED.model_size,
             engine = EXCLUDED.engine, reference_text = EXCLUDED.reference_text,
             size_bytes = EXCLUDED.size_bytes,
             reference_duration_ms = EXCLUDED.reference_duration_ms,
             created_at = EXCLUDED.created_at
           RETURNING ${COLUMNS}`,
          values(record),
        );
        const row = rows[0];
        if (!row) throw new Error(`prompt name ${record.name} was not written`);
        return {
          conflict: false as const,
          record: fromRow(row),
          ...(previous ? { previous } : {}),
        };
      });
    },
    async get(owner, name) {
      const db = await forRead();
      if (!db) return undefined;
      const { rows } = await db.query<Row>(
        `SELECT ${COLUMNS} FROM prompt_names WHERE owner = $1 AND name = $2`,
        [owner, name],
      );
      return rows[0] ? fromRow(rows[0]) : undefined;
    },
    async list(owner, filter, afterName, limit) {
      const db = await forRead();
      if (!db) return [];
      const labels = Object.fromEntries(
        Object.entries(filter.labels).map(([k, v]) => [k, v.toLowerCase()]),
      );
      const { rows } = await db.query<Row>(
        `SELECT ${COLUMNS} FROM prompt_names
         WHERE owner = $1 AND name > $2
           AND tags @> $3::jsonb
           AND lower(labels::text)::jsonb @> $4::jsonb
           AND ($5 = '' OR position(lower($5) in lower(name || ' ' || tags::text || ' ' || labels::text)) > 0)
           AND ($6 = '' OR model_family = $6)
         ORDER BY name LIMIT $7`,
        [
          owner,
          afterName,
          JSON.stringify(filter.tags),
          JSON.stringify(labels),
          filter.query,
          filter.modelFamily,
          limit,
        ],
      );
      return rows.map(fromRow);
    },
    async delete(owner, name) {
      const db = await forRead();
      if (!db) return undefined;
      const { rows } = await db.query<Row>(
        `DELETE FROM prompt_names WHERE owner = $1 AND name = $2 RETURNING ${COLUMNS}`,
        [owner, name],
      );
      return rows[0] ? fromRow(rows[0]) : undefined;
    },
    async countUsing(digest, owner) {
      const db = await forRead();
      if (!db) return 0;
      const { rows } = await db.query<{ n: number }>(
        "SELECT count(*)::int8 AS n FROM prompt_names WHERE digest = $1 AND ($2::text IS NULL OR owner = $2)",
        [digest, owner ?? null],
      );
      return Number(rows[0]?.n ?? 0);
    },
    async count(owner) {
      const db = await forRead();
      if (!db) return 0;
      const { rows } = await db.query<{ n: number }>(
        "SELECT count(*)::int8 AS n FROM prompt_names WHERE owner = $1",
        [owner],
      );
      return Number(rows[0]?.n ?? 0);
    },
  };
}
