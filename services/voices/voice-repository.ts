import type { SqlDatabase } from "../database/sql-database.js";

/** A cloned voice as stored. */
export interface VoiceRecord {
  /** Gateway-made id, `vc_…`. */
  id: string;
  /** Name for people. */
  name: string;
  /** Engine that made the prompt. */
  engine: string;
  /** Model family that made the prompt; only it can speak the voice. */
  modelFamily: string;
  /** Model size within the family; empty when not meaningful. */
  modelSize: string;
  /** BCP-47 language of the reference audio, empty when unknown. */
  language: string;
  /** Free text. */
  description: string;
  /** Caller-chosen key/values. */
  labels: Record<string, string>;
  /** sha256 of the clone prompt in the prompt store. */
  promptDigest: string;
  /** Size of the clone prompt, in bytes. */
  promptSizeBytes: number;
  /** sha256 of the reference audio, stored content-addressed beside the prompts. */
  referenceDigest: string;
  /** MIME type of the reference audio found by its magic bytes. */
  referenceContentType: string;
  /** Transcript of the reference audio, empty when unknown. */
  referenceText: string;
  /** Latest analysis as protobuf JSON, or undefined when none ran. */
  analysis: unknown;
  /** Token name of the creator. */
  owner: string;
  /** Caller's idempotency key, or undefined. */
  requestId: string | undefined;
  /** When the voice was created. */
  createdAt: Date;
}

/** Filters of {@link VoiceRepository.list}. */
export interface VoiceListFilter {
  /** Exact engine id, or empty for any. */
  engine: string;
  /** BCP-47 prefix (case-insensitive), or empty for any. */
  language: string;
}

/**
 * Where the voice rows live. Opening a new embedded database costs seconds, so reads never create
 * one: until something was written (or the database already existed), there are no cloned voices.
 */
export interface VoiceDatabase {
  /** Opens (creating and migrating when needed) the database. */
  get(): Promise<SqlDatabase>;
  /** Whether the database may already hold rows (a server URL, or an existing embedded dir). */
  readonly existing: boolean;
}

/** Voice rows in SQL. */
export interface VoiceRepository {
  /** Inserts a voice; resolves the existing voice instead when `(owner, requestId)` is taken. */
  insert(record: VoiceRecord): Promise<VoiceRecord>;
  /** The voice with `id`, or undefined. */
  get(id: string): Promise<VoiceRecord | undefined>;
  /** The voice `owner` created with `requestId`, or undefined. */
  findByRequest(owner: string, requestId: string): Promise<VoiceRecord | undefined>;
  /** Up to `limit` voices with ids after `afterId` (exclusive), in id order. */
  list(filter: VoiceListFilter, afterId: string, limit: number): Promise<VoiceRecord[]>;
  /**
   * Deletes a voice. Resolves with the deleted row and whether its prompt and reference are still
   * used by another voice, or undefined when there was no such voice.
   */
  delete(
    id: string,
  ): Promise<{ record: VoiceRecord; promptInUse: boolean; referenceInUse: boolean } | undefined>;
  /** Records an analysis; resolves with the updated voice, or undefined when it is gone. */
  setAnalysis(id: string, analysis: unknown): Promise<VoiceRecord | undefined>;
  /** Ids of up to `limit` voices whose prompt is `digest` (empty: no voice uses it). */
  voicesUsingPrompt(digest: string, limit: number): Promise<string[]>;
}

interface VoiceRow {
  id: string;
  name: string;
  engine: string;
  model_family: string;
  model_size: string;
  language: string;
  description: string;
  labels: Record<string, string> | null;
  prompt_digest: string;
  prompt_size_bytes: number;
  reference_digest: string;
  reference_content_type: string;
  reference_text: string;
  analysis: unknown;
  owner: string;
  request_id: string | null;
  created_at: Date;
}

const COLUMNS = `id, name, engine, model_family, model_size, language, description, labels,
  prompt_digest, prompt_size_bytes, reference_digest, reference_content_type, reference_text,
  analysis, owner, request_id, created_at`;

function fromRow(row: VoiceRow): VoiceRecord {
  return {
    id: row.id,
    name: row.name,
    engine: row.engine,
    modelFamily: row.model_family,
    modelSize: row.model_size,
    language: row.language,
    description: row.description,
    labels: row.labels ?? {},
    promptDigest: row.prompt_digest,
    promptSizeBytes: row.prompt_size_bytes,
    referenceDigest: row.reference_digest,
    referenceContentType: row.reference_content_type,
    referenceText: row.reference_text,
    analysis: row.analysis ?? undefined,
    owner: row.owner,
    requestId: row.request_id ?? undefined,
    createdAt: row.created_at,
  };
}

/** Creates the repository over `database` (tables from `voiceMigrations`). */
export function createVoiceRepository(database: VoiceDatabase): VoiceRepository {
  let written = false;
  /** The database for reads, or undefined when it cannot hold voices yet (nothing to open). */
  const forRead = async (): Promise<SqlDatabase | undefined> =>
    database.existing || written ? database.get() : undefined;
  const forWrite = async (): Promise<SqlDatabase> => {
    const db = await database.get();
    written = true;
    return db;
  };

  const findByRequest = async (owner: string, requestId: string) => {
    const db = await forRead();
    if (!db) return undefined;
    const { rows } = await db.query<VoiceRow>(
      `SELECT ${COLUMNS} FROM voices WHERE owner = $1 AND request_id = $2`,
      [owner, requestId],
    );
    return rows[0] ? fromRow(rows[0]) : undefined;
  };

  return {
    async insert(record) {
      const db = await forWrite();
      const { rows } = await db.query<VoiceRow>(
        `INSERT INTO voices (${COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (owner, request_id) WHERE request_id IS NOT NULL DO NOTHING
         RETURNING ${COLUMNS}`,
        [
          record.id,
          record.name,
          record.engine,
          record.modelFamily,
          record.modelSize,
          record.language,
          record.description,
          // Objects, not JSON text: both adapters serialize objects for jsonb the same way.
          record.labels,
          record.promptDigest,
          record.promptSizeBytes,
          record.referenceDigest,
          record.referenceContentType,
          record.referenceText,
          record.analysis ?? null,
          record.owner,
          record.requestId ?? null,
          record.createdAt,
        ],
      );
      if (rows[0]) return fromRow(rows[0]);
      // A concurrent retry with the same request id won the race: answer with its voice.
      const existing = record.requestId
        ? await findByRequest(record.owner, record.requestId)
        : undefined;
      if (!existing) throw new Error(`voice ${record.id} was neither inserted nor found`);
      return existing;
    },
    async get(id) {
      const db = await forRead();
      if (!db) return undefined;
      const { rows } = await db.query<VoiceRow>(`SELECT ${COLUMNS} FROM voices WHERE id = $1`, [
        id,
      ]);
      return rows[0] ? fromRow(rows[0]) : undefined;
    },
    findByRequest,
    async list(filter, afterId, limit) {
      const db = await forRead();
      if (!db) return [];
      const { rows } = await db.query<VoiceRow>(
        `SELECT ${COLUMNS} FROM voices
         WHERE id > $1
           AND ($2 = '' OR engine = $2)
           AND ($3 = '' OR left(lower(language), length($3)) = lower($3))
         ORDER BY id LIMIT $4`,
        [afterId, filter.engine, filter.language, limit],
      );
      return rows.map(fromRow);
    },
    async delete(id) {
      const db = await forRead();
      if (!db) return undefined;
      return db.transaction(async (tx) => {
        const { rows } = await tx.query<VoiceRow>(
          `DELETE FROM voices WHERE id = $1 RETURNING ${COLUMNS}`,
          [id],
        );
        const row = rows[0];
        if (!row) return undefined;
        const uses = await tx.query<{ prompt_uses: number; reference_uses: number }>(
          `SELECT count(*) FILTER (WHERE prompt_digest = $1)::int8 AS prompt_uses,
                  count(*) FILTER (WHERE reference_digest = $2)::int8 AS reference_uses
           FROM voices WHERE prompt_digest = $1 OR reference_digest = $2`,
          [row.prompt_digest, row.reference_digest],
        );
        return {
          record: fromRow(row),
          promptInUse: (uses.rows[0]?.prompt_uses ?? 0) > 0,
          referenceInUse: (uses.rows[0]?.reference_uses ?? 0) > 0,
        };
      });
    },
    async voicesUsingPrompt(digest, limit) {
      const db = await forRead();
      if (!db) return [];
      const { rows } = await db.query<{ id: string }>(
        "SELECT id FROM voices WHERE prompt_digest = $1 ORDER BY id LIMIT $2",
        [digest, limit],
      );
      return rows.map((r) => r.id);
    },
    async setAnalysis(id, analysis) {
      const db = await forRead();
      if (!db) return undefined;
      const { rows } = await db.query<VoiceRow>(
        `UPDATE voices SET analysis = $2 WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, analysis],
      );
      return rows[0] ? fromRow(rows[0]) : undefined;
    },
  };
}
