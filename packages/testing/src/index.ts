import './provided.ts'
import { inject } from 'vitest'
import { createTestDatabase } from './postgres.ts'

export { createTestDatabase, freePort, type RunningPostgres, startEmbeddedPostgres } from './postgres.ts'

/** A fresh, empty database for one test file on the run's cluster. */
export function freshDatabase() {
  return createTestDatabase(inject('postgresUrl'))
}
export { repoRoot, type ServiceProcess, startService, startTokendProcess, startVoiceApiProcess } from './process.ts'
export { type RunningTokend, startTokend } from './tokend.ts'
