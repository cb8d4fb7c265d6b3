export { type Cluster, type ClusterOptions, EmbeddedPostgresError, prepareCluster, removeCluster } from './cluster.ts'
export { type EmbeddedDatabase, startEmbeddedPostgres } from './embedded.ts'
export { findRepoRoot } from './repo-root.ts'
