export {
  type DataDirLock,
  DataDirLockedError,
  isDataDirLockedError,
  kDataDirLockFile,
  lockDataDir,
} from "./data-dir-lock.js";
export {
  createDatabaseProvider,
  type DatabaseProvider,
  type DatabaseProviderOptions,
} from "./database-provider.js";
export { migrate } from "./migrate.js";
export {
  defaultPgliteTemplateDir,
  openPgliteDatabase,
  type PgliteCreation,
  type PgliteDatabaseOptions,
} from "./pglite-database.js";
// openPostgresDatabase is not re-exported: it loads `pg`. Import "./postgres-database.js" directly.
export type { PostgresDatabaseOptions } from "./postgres-database.js";
export type { Migration, SqlDatabase, SqlExecutor, SqlResult } from "./sql-database.js";
