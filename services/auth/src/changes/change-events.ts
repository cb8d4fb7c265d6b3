import { sql } from 'kysely'
import { cacheKey } from '../cache/cache-key.ts'
import type { VerifyCache } from '../cache/verify-cache.ts'
import type { CreditLedger } from '../credits/credit-ledger.ts'
import type { Db } from '../db/database.ts'
import type { JwtRecord } from '../sessions/jwt.ts'
import type { SigningKeys } from '../sessions/signing-keys.ts'
import { parentCacheKey } from '../tokens/derived.ts'

/** The Postgres channel every replica LISTENs on. */
export const CHANGES_CHANNEL = 'tokend_changes'

/**
 * A change that may invalidate cached verifications. Kept small on purpose: NOTIFY
 * payloads are limited to 8000 bytes, so a change to many keys of an account is one
 * account event, never a list of keys.
 */
export type ChangeEvent =
  /** The key's account and id let change streams send each subscriber only its own account's events. */
  (
    | { type: 'key'; digest: string; accountId?: string | undefined; tokenId?: string | undefined }
    | { type: 'account'; accountId: string }
    /** A session logged out. */
    | { type: 'session'; sessionId: string }
    /** A user's role changed or the user was removed: every session of theirs. */
    | { type: 'user'; userId: string }
    /** A direct link was deleted. */
    | { type: 'direct'; directId: string }
    /** A signing key was added or retired: reload them. */
    | { type: 'signing_keys' }
  ) & {
    /** When the change was announced (epoch ms), for the invalidation-lag metric. */
    sentAt?: number
  }

/** The change event of one access key's row. */
export function keyChange(row: { digest: string; account_id: string; id: string }): ChangeEvent {
  return { type: 'key', digest: row.digest, accountId: row.account_id, tokenId: row.id }
}

export function encodeChange(event: ChangeEvent): string {
  const t = event.sentAt ?? Date.now()
  switch (event.type) {
    case 'key':
      return JSON.stringify({ k: event.digest, a: event.accountId, i: event.tokenId, t })
    case 'account':
      return JSON.stringify({ a: event.accountId, t })
    case 'session':
      return JSON.stringify({ s: event.sessionId, t })
    case 'user':
      return JSON.stringify({ u: event.userId, t })
    case 'direct':
      return JSON.stringify({ d: event.directId, t })
    case 'signing_keys':
      return JSON.stringify({ j: 1, t })
  }
}

export function decodeChange(payload: string | undefined): ChangeEvent | null {
  try {
    const value = JSON.parse(payload ?? '') as Record<string, unknown>
    const sentAt = typeof value.t === 'number' ? value.t : undefined
    if (typeof value.k === 'string') {
      const accountId = typeof value.a === 'string' ? value.a : undefined
      const tokenId = typeof value.i === 'string' ? value.i : undefined
      return { type: 'key', digest: value.k, accountId, tokenId, sentAt }
    }
    if (typeof value.a === 'string') return { type: 'account', accountId: value.a, sentAt }
    if (typeof value.s === 'string') return { type: 'session', sessionId: value.s, sentAt }
    if (typeof value.u === 'string') return { type: 'user', userId: value.u, sentAt }
    if (typeof value.d === 'string') return { type: 'direct', directId: value.d, sentAt }
    if (value.j === 1) return { type: 'signing_keys', sentAt }
  } catch {}
  return null
}

/** What one replica keeps that a change may invalidate. */
export interface ChangeTargets {
  cache: VerifyCache
  jwtCache: VerifyCache<JwtRecord>
  signingKeys: Pick<SigningKeys, 'refresh'>
  /** Usage credits leased by this replica: a changed key's go back before it leases anew. */
  credits?: Pick<CreditLedger, 'release'>
}

export async function applyChange(targets: ChangeTargets, event: ChangeEvent): Promise<void> {
  switch (event.type) {
    case 'key':
      if (event.tokenId !== undefined) targets.credits?.release(event.tokenId)
      targets.cache.evict(cacheKey(event.digest))
      // The key as the parent of derived tokens (tokens/derived.ts); without its id, every parent.
      if (event.tokenId !== undefined) return targets.cache.evict(parentCacheKey(event.tokenId))
      return targets.cache.evictWhere(() => true)
    case 'account':
      targets.cache.evictAccount(event.accountId)
      return targets.jwtCache.evictAccount(event.accountId)
    case 'session':
      return targets.jwtCache.evict(event.sessionId)
    case 'user':
      return targets.jwtCache.evictWhere((record) => record.kind === 'session' && record.userId === event.userId)
    case 'direct':
      return targets.jwtCache.evict(event.directId)
    case 'signing_keys':
      return targets.signingKeys.refresh()
  }
}

/**
 * Runs `work` in a transaction; every change it announces is sent with NOTIFY inside
 * that transaction (so other replicas hear of it exactly when it commits) and applied
 * to this replica's cache right after the commit, before the caller gets its answer.
 */
export async function changeTransaction<T>(
  deps: ChangeTargets & { db: Db },
  work: (trx: Db, announce: (event: ChangeEvent) => Promise<void>) => Promise<T>,
): Promise<T> {
  const events: ChangeEvent[] = []
  const result = await deps.db.transaction().execute((trx) =>
    work(trx, async (event) => {
      await sql`select pg_notify(${CHANGES_CHANNEL}, ${encodeChange(event)})`.execute(trx)
      events.push(event)
    }),
  )
  for (const event of events) await applyChange(deps, event)
  return result
}
