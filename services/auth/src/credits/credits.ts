import { sql } from 'kysely'
import { z } from 'zod'
import type { Db } from '../db/database.ts'

/** At most this many credits in a budget or a refill: far below 2^53, so JSON and JS numbers stay exact. */
export const MAX_CREDITS = 1_000_000_000_000
/** At most this many credits spent by one verify. */
export const MAX_COST = 1_000_000

export const refillInterval = z.enum(['day', 'month'])
export type RefillInterval = z.infer<typeof refillInterval>

/** A key's usage credits as token.issue takes them (SPEC §14). */
export const creditsInput = z
  .strictObject({
    remaining: z.number().int().min(0).max(MAX_CREDITS),
    refill: z
      .strictObject({
        amount: z.number().int().min(1).max(MAX_CREDITS),
        interval: refillInterval,
      })
      .optional()
      .meta({ description: 'At the start of every UTC day or month, `remaining` is set back to `amount`.' }),
  })
  .meta({
    id: 'CreditsInput',
    description: 'Usage credits: each verify spends `cost` (default 1); none left answers USAGE_EXCEEDED.',
  })
export type Credits = z.infer<typeof creditsInput>

/** What a verify may spend: an integer ≥ 0 (0 checks without spending). */
export const cost = z
  .number()
  .int()
  .min(0)
  .max(MAX_COST)
  .meta({ description: 'Credits this verify spends, for keys with credits (default 1; 0 checks without spending).' })

/** A key's credits as answers show them. */
export const creditsOutput = z
  .object({
    remaining: z.number().int(),
    refill: z.object({ amount: z.number().int(), interval: refillInterval }).nullable(),
  })
  .nullable()
export type CreditsInfo = z.infer<typeof creditsOutput>

/** When the period holding `now` began: midnight UTC of its day, or the first of its month. */
export function periodStart(now: number, interval: RefillInterval): number {
  const date = new Date(now)
  return interval === 'day'
    ? Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate())
    : Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1)
}

/** When the period that began at `start` ends (the next refill). */
export function periodEnd(start: number, interval: RefillInterval): number {
  const date = new Date(start)
  return interval === 'day'
    ? Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + 1)
    : Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1)
}

/**
 * Writes a key's credits (or removes them, with null) inside `trx` without announcing
 * anything: token.issue's key is new, and token.update announces the key's change
 * event itself, on which every replica gives back, and forgets, what it leased of the
 * old budget (leases of an older generation are never given back).
 */
export async function writeCredits(
  trx: Db,
  tokenId: string,
  credits: Credits | null,
  now: number = Date.now(),
): Promise<CreditsInfo> {
  if (credits === null) {
    await trx.deleteFrom('key_credits').where('key_id', '=', tokenId).execute()
    return null
  }
  const refill = credits.refill ?? null
  const row = {
    remaining: credits.remaining,
    refill_amount: refill?.amount ?? null,
    refill_interval: refill?.interval ?? null,
    // The current period counts as refilled: the first refill comes at the next boundary.
    refilled_at: new Date(periodStart(now, refill?.interval ?? 'day')),
  }
  await trx
    .insertInto('key_credits')
    .values({ key_id: tokenId, ...row })
    .onConflict((oc) => oc.column('key_id').doUpdateSet({ ...row, generation: sql`key_credits.generation + 1` }))
    .execute()
  return creditsInfo(row)
}

/** Gives `to` the credits `from` has in Postgres now (rotation), with the same refill; null without. */
export async function copyCredits(trx: Db, from: string, to: string): Promise<CreditsInfo> {
  const row = await trx
    .insertInto('key_credits')
    .columns(['key_id', 'remaining', 'refill_amount', 'refill_interval', 'refilled_at'])
    .expression((eb) =>
      eb
        .selectFrom('key_credits')
        .select([sql<string>`${to}::text`.as('key_id'), 'remaining', 'refill_amount', 'refill_interval', 'refilled_at'])
        .where('key_id', '=', from),
    )
    .returning(['remaining', 'refill_amount', 'refill_interval'])
    .executeTakeFirst()
  return row ? creditsInfo(row) : null
}

/** The credits of those keys that have any, as stored (what no replica holds on lease), by key id. */
export async function readCreditsOf(db: Db, tokenIds: string[]): Promise<Map<string, NonNullable<CreditsInfo>>> {
  if (tokenIds.length === 0) return new Map()
  const rows = await db
    .selectFrom('key_credits')
    .select(['key_id', 'remaining', 'refill_amount', 'refill_interval'])
    .where('key_id', 'in', tokenIds)
    .execute()
  return new Map(rows.map((row) => [row.key_id, creditsInfo(row) as NonNullable<CreditsInfo>]))
}

function creditsInfo(row: {
  remaining: number
  refill_amount: number | null
  refill_interval: RefillInterval | null
}): CreditsInfo {
  return {
    remaining: row.remaining,
    refill:
      row.refill_amount !== null && row.refill_interval !== null
        ? { amount: row.refill_amount, interval: row.refill_interval }
        : null,
  }
}
