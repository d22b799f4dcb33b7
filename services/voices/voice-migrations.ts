import type { Migration } from "../database/sql-database.js";

/**
 * Schema of cloned voices. A voice row exists only once its prompt and reference audio are stored,
 * so a row always points at bytes that exist. `(owner, request_id)` makes CreateVoice retries safe.
 */
export const voiceMigrations: readonly Migration[] = [
  {
    id: "voices/001-create-voices",
    sql: `CREATE TABLE voices (
            id text PRIMARY KEY,
            name text NOT NULL,
            engine text NOT NULL,
            model_family text NOT NULL,
            model_size text NOT NULL,
            language text NOT NULL,
            description text NOT NULL,
            labels jsonb NOT NULL,
            prompt_digest text NOT NULL,
            prompt_size_bytes bigint NOT NULL,
            reference_digest text NOT NULL,
            reference_content_type text NOT NULL,
            reference_text text NOT NULL,
            analysis jsonb,
            owner text NOT NULL,
            request_id text,
            created_at timestamptz NOT NULL DEFAULT now()
          );
          CREATE UNIQUE INDEX voices_owner_request ON voices (owner, request_id)
            WHERE request_id IS NOT NULL;
          CREATE INDEX voices_prompt_digest ON voices (prompt_digest);
          CREATE INDEX voices_reference_digest ON voices (reference_digest);`,
  },
  {
    // Tenants: `owner` now names the owning tenant. Rows written so far hold the creating token's
    // name, which is that token's default tenant, so they stay with it; rows without an owner go
    // to the "default" tenant. `prompt_owners` records which tenants uploaded which prompt bytes
    // (prompts are content-addressed, so one prompt may have several owners).
    id: "voices/002-tenants",
    sql: `ALTER TABLE voices ADD COLUMN shared boolean NOT NULL DEFAULT false;
          UPDATE voices SET owner = 'default' WHERE owner = '';
          CREATE INDEX voices_owner_id ON voices (owner, id);
          CREATE INDEX voices_shared_id ON voices (id) WHERE shared;
          CREATE TABLE prompt_owners (
            digest text NOT NULL,
            tenant text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (digest, tenant)
          );
          CREATE INDEX prompt_owners_tenant ON prompt_owners (tenant, digest);`,
  },
  {
    // What each tenant called the prompt bytes it uploaded (name, transcript, tags). Prompts are
    // content-addressed, so a second tenant uploading the same bytes used to get the first one's
    // metadata; now each owner reads its own. NULL for rows made before this (the stored
    // object's metadata stands for them).
    id: "voices/003-prompt-owner-metadata",
    sql: "ALTER TABLE prompt_owners ADD COLUMN metadata jsonb;",
  },
];
