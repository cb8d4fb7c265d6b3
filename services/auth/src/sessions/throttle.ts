import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import { RateLimitedError } from '../errors.ts'

/**
 * Sign-in throttling, counted in Postgres so the limits hold across replicas (an
 * attacker behind a load balancer gets no more tries with more replicas) and across
 * restarts. A sign-in already costs a query and an argon2 hash; one upsert more is noise.
 *
 * Fixed windows: each key counts its attempts from the first one; the count starts
 * over once the window has passed.
 */
export interface Limit {
  key: string
  max: number
}

/** Counts one attempt against every limit; throws 429 with the longest wait when any is over. */
export async function countAttempt(db: Db, limits: Limit[], windowS: number): Promise<void> {
  if (limits.length === 0) return
  const rows = await sql<{ key: string; attempts: number; retry_after_ms: number }>`
    insert into login_throttle as t (key, window_start, attempts)
    select key, now(), 1 from unnest(${limits.map((limit) => limit.key)}::text[]) as key
    on conflict (key) do update set
      window_start = case when t.window_start <= now() - make_interval(secs => ${windowS}) then now() else t.window_start end,
      attempts = case when t.window_start <= now() - make_interval(secs => ${windowS}) then 1 else t.attempts + 1 end
    returning key, attempts,
      ceil(extract(epoch from window_start + make_interval(secs => ${windowS}) - now()) * 1000)::int as retry_after_ms
  `.execute(db)
  let retryAfterMs = 0
  for (const row of rows.rows) {
    const limit = limits.find((candidate) => candidate.key === row.key)
    if (limit && row.attempts > limit.max) retryAfterMs = Math.max(retryAfterMs, row.retry_after_ms, 1_000)
  }
  if (retryAfterMs > 0) throw new RateLimitedError('too many sign-in attempts; wait before trying again', retryAfterMs)
}

/** A successful sign-in clears its username's counts (never its address's). */
export async function clearAttempts(db: Db, keys: string[]): Promise<void> {
  await db.deleteFrom('login_throttle').where('key', 'in', keys).execute()
}

/** Drops counts whose window has passed. */
export async function sweepAttempts(db: Db, windowS: number): Promise<void> {
  await db
    .deleteFrom('login_throttle')
    .where('window_start', '<', new Date(Date.now() - windowS * 1000))
    .execute()
}
