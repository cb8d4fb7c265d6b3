import { sql } from 'kysely'
import { cacheKey } from '../cache/cache-key.ts'
import type { VerifyCache } from '../cache/verify-cache.ts'
import type { Db } from '../db/database.ts'

/** The Postgres channel every replica LISTENs on. */
export const CHANGES_CHANNEL = 'tokend_changes'

/**
 * A change that may invalidate cached verifications. Kept small on purpose: NOTIFY
 * payloads are limited to 8000 bytes, so a change to many keys of an account is one
 * account event, never a list of keys.
 */
export type ChangeEvent = ({ type: 'key'; digest: string } | { type: 'account'; accountId: string }) & {
  /** When the change was announced (epoch ms), for the invalidation-lag metric. */
  sentAt?: number
}

export function encodeChange(event: ChangeEvent): string {
  const t = event.sentAt ?? Date.now()
  return JSON.stringify(event.type === 'key' ? { k: event.digest, t } : { a: event.accountId, t })
}

export function decodeChange(payload: string | undefined): ChangeEvent | null {
  try {
    const value = JSON.parse(payload ?? '') as { k?: unknown; a?: unknown; t?: unknown }
    const sentAt = typeof value.t === 'number' ? value.t : undefined
    if (typeof value.k === 'string') return { type: 'key', digest: value.k, sentAt }
    if (typeof value.a === 'string') return { type: 'account', accountId: value.a, sentAt }
  } catch {}
  return null
}

export function applyChange(cache: VerifyCache, event: ChangeEvent): void {
  if (event.type === 'key') cache.evict(cacheKey(event.digest))
  else cache.evictAccount(event.accountId)
}

/**
 * Runs `work` in a transaction; every change it announces is sent with NOTIFY inside
 * that transaction (so other replicas hear of it exactly when it commits) and applied
 * to this replica's cache right after the commit, before the caller gets its answer.
 */
export async function changeTransaction<T>(
  deps: { db: Db; cache: VerifyCache },
  work: (trx: Db, announce: (event: ChangeEvent) => Promise<void>) => Promise<T>,
): Promise<T> {
  const events: ChangeEvent[] = []
  const result = await deps.db.transaction().execute((trx) =>
    work(trx, async (event) => {
      await sql`select pg_notify(${CHANGES_CHANNEL}, ${encodeChange(event)})`.execute(trx)
      events.push(event)
    }),
  )
  for (const event of events) applyChange(deps.cache, event)
  return result
}
