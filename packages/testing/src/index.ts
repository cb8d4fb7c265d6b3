import './provided.ts'
import { inject } from 'vitest'
import { createTestDatabase } from './postgres.ts'

export { createTestDatabase, freePort, query, type RunningPostgres, startEmbeddedPostgres } from './postgres.ts'

/** The superuser URL of the run's Postgres cluster (embedded, or TEST_DATABASE_URL). */
export function clusterUrl(): string {
  return inject('postgresUrl')
}

/** A fresh, empty database for one test file on the run's cluster. */
export function freshDatabase() {
  return createTestDatabase(clusterUrl())
}
export { Caller, type Reply } from './caller.ts'
export { repoRoot, type ServiceProcess, startService, startTokendProcess, startVoiceApiProcess } from './process.ts'
export { type Replicas, startReplicas } from './replicas.ts'
export { type ReceivedMail, startSmtp, type TestSmtp } from './smtp.ts'
export { type RunningTokend, startTokend } from './tokend.ts'
