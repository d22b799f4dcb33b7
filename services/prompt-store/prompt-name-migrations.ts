import type { Migration } from "../database/sql-database.js";

/**
 * Schema of prompt names: a name (unique per owner) points at a content-addressed prompt, with
 * tags and labels to find it by. What the prompt store knows of the prompt (model, engine, size,
 * transcript) is copied into the row, so listing and filtering never read the object store.
 */
export const promptNameMigrations: readonly Migration[] = [
  {
    id: "prompt-names/001-create-prompt-names",
    sql: `CREATE TABLE prompt_names (
            owner text NOT NULL,
            name text NOT NULL,
            digest text NOT NULL,
            tags jsonb NOT NULL,
            labels jsonb NOT NULL,
            model_family text NOT NULL,
            model_size text NOT NULL,
            engine text NOT NULL,
            reference_text text NOT NULL,
            size_bytes bigint NOT NULL,
            reference_duration_ms bigint NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (owner, name)
          );
          CREATE INDEX prompt_names_digest ON prompt_names (digest);`,
  },
];
