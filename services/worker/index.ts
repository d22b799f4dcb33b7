/**
 * Worker threads whose body is TypeScript: one plain-JavaScript entry file that loads the body the
 * same way under tsx, vitest, Node's type stripping and once compiled.
 */
export { TS_WORKER_ENTRY_URL } from "./ts-worker-entry-url.js";
