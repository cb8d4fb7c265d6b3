import { digestBytes, type Environment, parseKey } from '@tokend/keys'
import { cacheKey } from '../cache/cache-key.ts'
import type { KeyRecord } from '../cache/key-record.ts'
import type { Deps } from '../deps.ts'
import { ForbiddenError } from '../errors.ts'
import type { Principal, Role, SessionPrincipal } from '../principal.ts'
import type { RateLimitRule } from '../ratelimit/rate-limiter.ts'
import { checkJwt, looksLikeJwt } from '../sessions/jwt.ts'

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

/**
 * A verification's answer. Sessions and direct tokens hold no scopes; a direct token
 * has no role in its account either: it reaches its `resource` and nothing else.
 */
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
  | {
      valid: true
      kind: 'session'
      /** The session id. */
      tokenId: string
      userId: string
      accountId: string
      environment: Environment
      role: Role
      scopes: string[]
      /** The username. */
      name: string
      expiresAt: string
    }
  | {
      valid: true
      kind: 'direct'
      /** The direct link's id. */
      tokenId: string
      accountId: string
      environment: Environment
      role: null
      scopes: string[]
      name: string
      expiresAt: string
      resource: { type: string; id: string }
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
  const record = await deps.cache.lookup(cacheKey(digest), () => deps.keys.load(digest.toString('base64url')))
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
  const result = await verifyCredential(deps, token, require)
  if (result.valid && ratelimit) {
    const decision = await deps.ratelimits.consume(result.accountId, ratelimit)
    if (!decision.allowed) return { valid: false, reason: 'RATE_LIMITED', retryAfterMs: decision.retryAfterMs }
  }
  return result
}

async function verifyCredential(deps: Deps, token: string, require: VerifyRequirements): Promise<VerifyResult> {
  const checked = await checkKey(deps, token)
  if ('reason' in checked) {
    if (checked.reason === 'MALFORMED' && looksLikeJwt(token)) return verifyJwt(deps, token, require)
    return { valid: false, reason: checked.reason }
  }
  const { record } = checked
  const denied = unmet(require, record)
  if (denied) return denied
  deps.usage.touch(record.id)
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

async function verifyJwt(deps: Deps, token: string, require: VerifyRequirements): Promise<VerifyResult> {
  const checked = await checkJwt(deps, token)
  if ('reason' in checked) return { valid: false, reason: checked.reason }
  const { record } = checked
  const expiresAt = new Date(checked.expiresAt).toISOString()
  if (record.kind === 'session') {
    const denied = unmet(require, { environment: record.environment, role: record.role, scopes: [] })
    if (denied) return denied
    return {
      valid: true,
      kind: 'session',
      tokenId: record.id,
      userId: record.userId,
      accountId: record.accountId,
      environment: record.environment,
      role: record.role,
      scopes: [],
      name: record.username,
      expiresAt,
    }
  }
  const denied = unmet(require, { environment: record.environment, role: null, scopes: [] })
  if (denied) return denied
  return {
    valid: true,
    kind: 'direct',
    tokenId: record.id,
    accountId: record.accountId,
    environment: record.environment,
    role: null,
    scopes: [],
    name: `${record.resourceType}:${record.resourceId}`,
    expiresAt,
    resource: { type: record.resourceType, id: record.resourceId },
  }
}

/** The first requirement a credential misses, as a denial; null when it meets them all. */
function unmet(
  require: VerifyRequirements,
  held: { environment: Environment; role: Role | null; scopes: readonly string[] },
): VerifyResult | null {
  if (require.environment && require.environment !== held.environment) {
    return { valid: false, reason: 'WRONG_ENVIRONMENT' }
  }
  const missingScopes = require.scopes?.filter((scope) => !held.scopes.includes(scope)) ?? []
  if (missingScopes.length > 0) return { valid: false, reason: 'INSUFFICIENT_SCOPE', missingScopes }
  // A manager key does not satisfy a requirement for an admin one; there is no separate role reason.
  if (require.role === 'admin' && held.role !== 'admin') return { valid: false, reason: 'INSUFFICIENT_SCOPE' }
  return null
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

/** The caller behind a bearer JWT: sessions only; a direct token reaches its resource, not tokend. */
export async function sessionPrincipalOf(deps: Deps, token: string): Promise<SessionPrincipal | null> {
  const checked = await checkJwt(deps, token)
  if ('reason' in checked) return null
  const { record } = checked
  if (record.kind === 'direct') {
    throw new ForbiddenError("a direct token reaches only its own resource, not tokend's procedures")
  }
  return {
    kind: 'session',
    sessionId: record.id,
    userId: record.userId,
    username: record.username,
    accountId: record.accountId,
    operator: record.operator,
    role: record.role,
    scopes: [],
    expiresAt: new Date(checked.expiresAt).toISOString(),
  }
}
