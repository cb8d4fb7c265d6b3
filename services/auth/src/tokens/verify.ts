import { timingSafeEqual } from 'node:crypto'
import { digestBytes, type Environment, parseKey } from '@tokend/keys'
import type pg from 'pg'
import { cacheKey } from '../cache/cache-key.ts'
import type { KeyRecord } from '../cache/key-record.ts'
import type { Deps } from '../deps.ts'
import { UnavailableError } from '../errors.ts'
import type { Principal, Role } from '../principal.ts'
import type { RateLimitRule } from '../ratelimit/rate-limiter.ts'
import { findKeyRecord } from './token.repository.ts'

export type DenialReason =
  | 'MALFORMED'
  | 'NOT_FOUND'
  | 'EXPIRED'
  | 'REVOKED'
  | 'DISABLED'
  | 'ACCOUNT_SUSPENDED'
  | 'INSUFFICIENT_SCOPE'
  | 'WRONG_ENVIRONMENT'
  | 'RATE_LIMITED'

export interface VerifyRequirements {
  scopes?: string[] | undefined
  environment?: Environment | undefined
  role?: Role | undefined
}

export type VerifyResult =
  | {
      valid: true
      kind: 'access_key'
      tokenId: string
      accountId: string
      environment: Environment
      role: Role
      scopes: string[]
      name: string
      expiresAt: string | null
    }
  | { valid: false; reason: DenialReason; missingScopes?: string[]; retryAfterMs?: number }

type Checked = { record: KeyRecord } | { reason: DenialReason }

/**
 * Checks a presented key: offline format and checksum first, then the cache, then
 * Postgres. Throws UnavailableError only when the answer needs the database and
 * the database cannot give it — never a guess.
 */
export async function checkKey(deps: Deps, token: string): Promise<Checked> {
  if (parseKey(token, deps.config.TOKEND_TOKEN_PREFIX) === null) return { reason: 'MALFORMED' }
  const digest = digestBytes(token)
  const record = await deps.cache.lookup(cacheKey(digest), () => loadRecord(deps.pool, digest.toString('base64url')))
  if (record === null) return { reason: 'NOT_FOUND' }
  if (record.revoked) return { reason: 'REVOKED' }
  if (record.expiresAt !== null && record.expiresAt <= Date.now()) return { reason: 'EXPIRED' }
  if (record.disabled) return { reason: 'DISABLED' }
  if (!record.accountActive) return { reason: 'ACCOUNT_SUSPENDED' }
  return { record }
}

export async function verifyToken(
  deps: Deps,
  token: string,
  require: VerifyRequirements = {},
  ratelimit?: RateLimitRule,
): Promise<VerifyResult> {
  const checked = await checkKey(deps, token)
  if ('reason' in checked) return { valid: false, reason: checked.reason }
  const { record } = checked
  if (require.environment && require.environment !== record.environment) {
    return { valid: false, reason: 'WRONG_ENVIRONMENT' }
  }
  const missingScopes = require.scopes?.filter((scope) => !record.scopes.includes(scope)) ?? []
  if (missingScopes.length > 0) return { valid: false, reason: 'INSUFFICIENT_SCOPE', missingScopes }
  // A manager key does not satisfy a requirement for an admin one; there is no separate role reason.
  if (require.role === 'admin' && record.role !== 'admin') return { valid: false, reason: 'INSUFFICIENT_SCOPE' }
  deps.usage.touch(record.id)
  if (ratelimit) {
    const decision = await deps.ratelimits.consume(record.accountId, ratelimit)
    if (!decision.allowed) return { valid: false, reason: 'RATE_LIMITED', retryAfterMs: decision.retryAfterMs }
  }
  return {
    valid: true,
    kind: 'access_key',
    tokenId: record.id,
    accountId: record.accountId,
    environment: record.environment,
    role: record.role,
    scopes: [...record.scopes],
    name: record.name,
    expiresAt: record.expiresAt === null ? null : new Date(record.expiresAt).toISOString(),
  }
}

export function principalOf(record: KeyRecord): Principal {
  return {
    kind: 'access_key',
    tokenId: record.id,
    accountId: record.accountId,
    operator: record.operator,
    environment: record.environment,
    role: record.role,
    scopes: record.scopes,
    name: record.name,
    expiresAt: record.expiresAt === null ? null : new Date(record.expiresAt).toISOString(),
  }
}

async function loadRecord(pool: pg.Pool, digest: string): Promise<KeyRecord | null> {
  let found: Awaited<ReturnType<typeof findKeyRecord>>
  try {
    found = await findKeyRecord(pool, digest)
  } catch (error) {
    throw new UnavailableError(error)
  }
  // The index did the lookup; compare the digest itself in constant time before trusting the row.
  if (!found || !timingSafeEqual(Buffer.from(found.digest), Buffer.from(digest))) return null
  return found.record
}
