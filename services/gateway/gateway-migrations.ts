import type { Migration } from "../database/sql-database.js";
import { jobMigrations } from "../jobs/job-migrations.js";
import { limitMigrations } from "../limits/sql-usage-store.js";
import { promptNameMigrations } from "../prompt-store/prompt-name-migrations.js";
import { storyforgeMigrations } from "../storyforge/worker-store.js";
import { voiceMigrations } from "../voices/voice-migrations.js";

/**
 * Every SQL migration the gateway applies, in order: one list, so each concern's tables are
 * created by the same `migrate` run under one advisory lock. Append new concerns at the end; never
 * reorder or edit an applied migration (add a new one).
 */
export const gatewayMigrations: readonly Migration[] = [
  ...voiceMigrations,
  ...jobMigrations,
  ...limitMigrations,
  ...promptNameMigrations,
  ...storyforgeMigrations,
];
