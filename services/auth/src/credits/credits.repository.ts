import type pg from 'pg'
import type { RefillInterval } from './credits.ts'

/** A key's credit pool as Postgres holds it: what no replica has leased. */
export interface Pool {
  remaining: number
  generation: number
  interval: RefillInterval | null
  /** Start of the period the pool belongs to (epoch ms). */
  refilledAt: number
}

interface PoolRow {
  remaining: number
  generation: number
  refill_interval: RefillInterval | null
  refilled_at: Date
}

// Named, so each pooled connection parses and plans them once.
const PEEK = {
  name: 'tokend_credits_peek',
  // Refills first when the period (by the caller's clock, $2) has moved on: once, whoever comes first.
  text: `with refilled as (
           update key_credits
              set remaining = refill_amount,
                  refilled_at = date_trunc(refill_interval, $2::timestamptz, 'UTC'),
                  generation = generation + 1
            where key_id = $1 and refill_interval is not null
              and refilled_at < date_trunc(refill_interval, $2::timestamptz, 'UTC')
           returning remaining, generation, refill_interval, refilled_at)
         select remaining, generation, refill_interval, refilled_at from refilled
         union all
         select remaining, generation, refill_interval, refilled_at from key_credits
          where key_id = $1 and not exists (select 1 from refilled)`,
}

const TAKE = {
  name: 'tokend_credits_take',
  text: `update key_credits set remaining = remaining - $2
          where key_id = $1 and generation = $3 and remaining >= $2
          returning remaining`,
}

const GIVE_BACK = {
  name: 'tokend_credits_give_back',
  text: 'update key_credits set remaining = remaining + $2 where key_id = $1 and generation = $3',
}

/** The key's pool, refilled first if its period is over at `now`; null when the key has no credits. */
export async function peekPool(pool: pg.Pool, keyId: string, now: number): Promise<Pool | null> {
  const { rows } = await pool.query<PoolRow>({ ...PEEK, values: [keyId, new Date(now).toISOString()] })
  const row = rows[0]
  if (!row) return null
  return {
    remaining: row.remaining,
    generation: row.generation,
    interval: row.refill_interval,
    refilledAt: row.refilled_at.getTime(),
  }
}

/**
 * Leases `amount` credits of `generation` atomically: the row lock orders every
 * replica's leases, and none takes more than the pool holds. Returns what the pool
 * holds afterwards, or null when it holds too few or the generation has moved on.
 */
export async function takeCredits(
  pool: pg.Pool,
  keyId: string,
  amount: number,
  generation: number,
): Promise<number | null> {
  const { rows } = await pool.query<{ remaining: number }>({ ...TAKE, values: [keyId, amount, generation] })
  return rows[0]?.remaining ?? null
}

/** Returns unspent leased credits, only to the generation they were leased from. */
export async function giveBackCredits(pool: pg.Pool, keyId: string, amount: number, generation: number) {
  await pool.query({ ...GIVE_BACK, values: [keyId, amount, generation] })
}
