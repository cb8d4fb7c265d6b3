export { type EmbeddedDatabase, importEmbeddedPostgres, startEmbeddedPostgres } from './embedded.ts'
export { findRepoRoot } from './repo-root.ts'
