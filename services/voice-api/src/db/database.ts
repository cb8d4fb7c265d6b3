import { Kysely, type Migration, Migrator, PostgresDialect } from 'kysely'
import pg from 'pg'
import * as recordings from './migrations/2026-11-24T0900_recordings.ts'
import type { Database } from './schema.ts'

export type Db = Kysely<Database>

// Listed by hand rather than read from the folder, so a bundled build still has them.
const migrations: Record<string, Migration> = {
  '2026-11-24T0900_recordings': recordings,
}

export function createDb(url: string, poolSize: number, onPoolError: (error: Error) => void): Db {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5_000 })
  // An idle client losing its server must not crash the process; the pool replaces it.
  pool.on('error', onPoolError)
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
}

/** Kysely's migrator takes its own lock, so replicas starting together migrate once. */
export async function migrateToLatest(db: Db): Promise<void> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
  const { error, results } = await migrator.migrateToLatest()
  const failed = results?.find((result) => result.status === 'Error')
  if (error || failed) throw new Error(`migration ${failed?.migrationName ?? ''} failed`, { cause: error })
}

/** Error codes and messages that mean "Postgres cannot answer right now". */
const UNAVAILABLE = /^(08|57P0|53300)|ECONNREFUSED|ECONNRESET|ETIMEDOUT/
const UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|connection error/i

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && UNAVAILABLE.test(code)) return true
  if (UNAVAILABLE_MESSAGES.test(error.message)) return true
  return error instanceof AggregateError && error.errors.some(isDatabaseUnavailable)
}
