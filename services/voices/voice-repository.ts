import type { SqlDatabase } from "../database/sql-database.js";
import type { PromptMetadata } from "../prompt-store/prompt-store.js";

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
  /** Tenant that owns the voice (the creating token's tenant); see `TenantView`. */
  owner: string;
  /** Whether every tenant may list, read and speak the voice (only its owner or admin change it). */
  shared: boolean;
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
 * Whose voices a query sees: `all` sees every tenant's, otherwise `tenant`'s own and, where
 * sharing applies, shared ones. Structurally a `TenantView`.
 */
export interface VoiceViewer {
  /** The caller's tenant. */
  tenant: string;
  /** Whether the caller sees every tenant's voices (admin). */
  all: boolean;
}

/**
 * The parts of a prompt's metadata that belong to the tenant that uploaded it (the rest, such as
 * the model family, describes the bytes and is the same for everyone).
 */
export type PromptOwnerMetadata = Pick<PromptMetadata, "name" | "referenceText" | "tags">;

/** What a tenant may do with a stored prompt. */
export interface PromptAccess {
  /** The tenant uploaded the bytes or owns a voice speaking with them: it may read and delete. */
  owned: boolean;
  /** A shared voice speaks with the bytes: any tenant may synthesize with them. */
  shared: boolean;
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
  /**
   * Up to `limit` voices `viewer` may see (its own and shared ones, or all) with ids after
   * `afterId` (exclusive), in id order.
   */
  list(
    filter: VoiceListFilter,
    afterId: string,
    limit: number,
    viewer: VoiceViewer,
  ): Promise<VoiceRecord[]>;
  /** Marks a voice shared or not; resolves with the updated voice, or undefined when it is gone. */
  setShared(id: string, shared: boolean): Promise<VoiceRecord | undefined>;
  /**
   * Records that `tenant` stored the prompt `digest`, with what it called it (idempotent: a
   * tenant's first upload's metadata stays). Resolves with whether `tenant` is a new owner.
   */
  addPromptOwner(digest: string, tenant: string, metadata?: PromptOwnerMetadata): Promise<boolean>;
  /**
   * What `tenant` called the prompt `digest` when it uploaded it, or undefined (not its upload,
   * or an upload recorded before owners had metadata).
   */
  promptOwnerMetadata(digest: string, tenant: string): Promise<PromptOwnerMetadata | undefined>;
  /**
   * Forgets that `tenant` stored `digest` (every tenant when undefined). Resolves with how many
   * tenants still own it by upload.
   */
  removePromptOwner(digest: string, tenant: string | undefined): Promise<number>;
  /** What `tenant` may do with the prompt `digest`. */
  promptAccess(digest: string, tenant: string): Promise<PromptAccess>;
  /**
   * Digests of up to `limit` prompts `tenant` owns (uploaded, or spoken by one of its voices)
   * after `afterDigest` (exclusive), in digest order.
   */
  ownedPrompts(tenant: string, afterDigest: string, limit: number): Promise<string[]>;
  /**
   * Deletes a voice. Resolves with the deleted row and whether its prompt and reference are still
   * used by another voice, or undefined when there was no such voice.
   */
  delete(
    id: string,
  ): Promise<{ record: VoiceRecord; promptInUse: boolean; referenceInUse: boolean } | undefined>;
  /** Records an analysis; resolves with the updated voice, or undefined when it is gone. */
  setAnalysis(id: string, analysis: unknown): Promise<VoiceRecord | undefined>;
  /**
   * Ids of up to `limit` voices whose prompt is `digest` (empty: no voice uses it), of `owner`
   * only when given.
   */
  voicesUsingPrompt(digest: string, limit: number, owner?: string): Promise<string[]>;
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
  shared: boolean;
  request_id: string | null;
  created_at: Date;
}

const COLUMNS = `id, name, engine, model_family, model_size, language, description, labels,
  prompt_digest, prompt_size_bytes, reference_digest, reference_content_type, reference_text,
  analysis, owner, shared, request_id, created_at`;

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
    shared: row.shared,
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
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
          record.shared,
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
    async list(filter, afterId, limit, viewer) {
      const db = await forRead();
      if (!db) return [];
      const { rows } = await db.query<VoiceRow>(
        `SELECT ${COLUMNS} FROM voices
         WHERE id > $1
           AND ($2 = '' OR engine = $2)
           AND ($3 = '' OR left(lower(language), length($3)) = lower($3))
           AND ($5 OR owner = $6 OR shared)
         ORDER BY id LIMIT $4`,
        [afterId, filter.engine, filter.language, limit, viewer.all, viewer.tenant],
      );
      return rows.map(fromRow);
    },
    async setShared(id, shared) {
      const db = await forRead();
      if (!db) return undefined;
      const { rows } = await db.query<VoiceRow>(
        `UPDATE voices SET shared = $2 WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, shared],
      );
      return rows[0] ? fromRow(rows[0]) : undefined;
    },
    async addPromptOwner(digest, tenant, metadata) {
      const db = await forWrite();
      const { rows } = await db.query<{ added: number }>(
        `INSERT INTO prompt_owners (digest, tenant, metadata) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING RETURNING 1 AS added`,
        // An object, not JSON text: both adapters serialize objects for jsonb the same way.
        [digest, tenant, metadata ?? null],
      );
      return rows.length > 0;
    },
    async promptOwnerMetadata(digest, tenant) {
      const db = await forRead();
      if (!db) return undefined;
      const { rows } = await db.query<{ metadata: PromptOwnerMetadata | string | null }>(
        "SELECT metadata FROM prompt_owners WHERE digest = $1 AND tenant = $2",
        [digest, tenant],
      );
      const stored = rows[0]?.metadata;
      if (stored === null || stored === undefined) return undefined;
      return typeof stored === "string" ? (JSON.parse(stored) as PromptOwnerMetadata) : stored;
    },
    async removePromptOwner(digest, tenant) {
      const db = await forRead();
      if (!db) return 0;
      await db.query(
        "DELETE FROM prompt_owners WHERE digest = $1 AND ($2::text IS NULL OR tenant = $2)",
        [digest, tenant ?? null],
      );
      const { rows } = await db.query<{ n: number }>(
        "SELECT count(*)::int8 AS n FROM prompt_owners WHERE digest = $1",
        [digest],
      );
      return rows[0]?.n ?? 0;
    },
    async promptAccess(digest, tenant) {
      const db = await forRead();
      if (!db) return { owned: false, shared: false };
      const { rows } = await db.query<{ owned: boolean; shared: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM prompt_owners WHERE digest = $1 AND tenant = $2)
                OR EXISTS (SELECT 1 FROM voices WHERE prompt_digest = $1 AND owner = $2) AS owned,
                EXISTS (SELECT 1 FROM voices WHERE prompt_digest = $1 AND shared) AS shared`,
        [digest, tenant],
      );
      return { owned: rows[0]?.owned === true, shared: rows[0]?.shared === true };
    },
    async ownedPrompts(tenant, afterDigest, limit) {
      const db = await forRead();
      if (!db) return [];
      const { rows } = await db.query<{ digest: string }>(
        `SELECT digest FROM (
           SELECT digest FROM prompt_owners WHERE tenant = $1 AND digest > $2
           UNION
           SELECT prompt_digest AS digest FROM voices WHERE owner = $1 AND prompt_digest > $2
         ) owned ORDER BY digest LIMIT $3`,
        [tenant, afterDigest, limit],
      );
      return rows.map((r) => r.digest);
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
    async voicesUsingPrompt(digest, limit, owner) {
      const db = await forRead();
      if (!db) return [];
      const { rows } = await db.query<{ id: string }>(
        `SELECT id FROM voices WHERE prompt_digest = $1 AND ($3::text IS NULL OR owner = $3)
         ORDER BY id LIMIT $2`,
        [digest, limit, owner ?? null],
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
