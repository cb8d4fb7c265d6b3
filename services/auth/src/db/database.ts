import { Kysely, type Migration, Migrator, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import * as core from './migrations/2026-11-23T0800_core.ts'
import * as people from './migrations/2026-11-23T0810_people.ts'
import * as limits from './migrations/2026-11-23T0900_limits.ts'
import * as reminders from './migrations/2026-11-23T1000_reminders.ts'
import * as keyControls from './migrations/2026-12-03T1000_key_controls.ts'
import * as credits from './migrations/2026-12-03T1010_credits.ts'
import * as forgotten from './migrations/2026-12-03T1040_forgotten.ts'
import type { Database } from './schema.ts'

export type Db = Kysely<Database>

// Listed by hand rather than read from the folder, so a bundled build still has them.
const migrations: Record<string, Migration> = {
  '2026-11-23T0800_core': core,
  '2026-11-23T0810_people': people,
  '2026-11-23T0900_limits': limits,
  '2026-11-23T1000_reminders': reminders,
  '2026-12-03T1000_key_controls': keyControls,
  '2026-12-03T1010_credits': credits,
  '2026-12-03T1040_forgotten': forgotten,
}

/** Ties every replica's start-up (migrations, bootstrap) to one session-level lock. */
const STARTUP_LOCK = 0x70_6b_64_01

// Timestamps come back as Date (pg's default) and bigints as numbers; no other parsing.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10))

/**
 * How long a request waits on Postgres at most: for a query's answer (on our side, so
 * a frozen server cannot hold it longer) and in the server (so a stuck statement does
 * not hold a connection); for a connection somewhat longer, since a burst of requests
 * queueing for the pool is load, not an outage. Fail-closed answers come within a
 * second or two, not when TCP gives up.
 */
export const REQUEST_DB_TIMEOUTS = { connectMs: 2_500, queryMs: 1_500, statementMs: 1_000 }

export function createDb(
  url: string,
  poolSize: number,
  onPoolError: (error: Error) => void,
  timeouts: typeof REQUEST_DB_TIMEOUTS | null = REQUEST_DB_TIMEOUTS,
): { db: Db; pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: timeouts?.connectMs ?? 30_000,
    ...(timeouts && { query_timeout: timeouts.queryMs, statement_timeout: timeouts.statementMs }),
  })
  // An idle client losing its server must not crash the process; the pool replaces it.
  pool.on('error', onPoolError)
  return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), pool }
}

/**
 * Runs `work` while holding the start-up lock on one connection of its own, so
 * replicas that start together migrate and bootstrap one after another, never at once.
 * That connection has no request timeouts: waiting for another replica's migrations,
 * or running a long one, is what it is for.
 */
export async function withStartupLock<T>(url: string, work: (db: Db) => Promise<T>): Promise<T> {
  const { db } = createDb(url, 1, () => {}, null)
  try {
    return await db.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(${STARTUP_LOCK})`.execute(conn)
      try {
        return await work(conn)
      } finally {
        await sql`select pg_advisory_unlock(${STARTUP_LOCK})`.execute(conn)
      }
    })
  } finally {
    await db.destroy()
  }
}

export async function migrateToLatest(db: Db): Promise<void> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
  const { error, results } = await migrator.migrateToLatest()
  const failed = results?.find((result) => result.status === 'Error')
  if (error || failed) {
    throw new Error(`migration ${failed?.migrationName ?? ''} failed`, { cause: error })
  }
}
