import { decodeProtectedHeader, SignJWT } from 'jose'
import { z } from 'zod'
import type { KeyRecord } from '../cache/key-record.ts'
import type { Deps } from '../deps.ts'
import { ForbiddenError, InsufficientScopeError, UnavailableError } from '../errors.ts'
import { newId } from '../ids.ts'
import type { DerivedCredential, Principal } from '../principal.ts'
import { verifySigned } from '../sessions/jwt.ts'
import { JWT_ALGORITHM } from '../sessions/signing-keys.ts'
import { scopes } from '../validation.ts'
import { allowedFrom, type ClientAddress } from './key-controls.ts'
import { findKeyRecordById } from './token.repository.ts'
import type { DenialReason } from './verify.ts'

/** The `typ` header of a derived token: it tells one from a session or direct JWT before any other work. */
export const DERIVED_TYP = 'tokend-derived+jwt'
/** Derived tokens live at most this long (SPEC §14: ≤ 15 min). */
export const MAX_DERIVED_TTL_SECONDS = 900
export const DEFAULT_DERIVED_TTL_SECONDS = 300

/**
 * An audience names the service a derived token is for (`voice-api`,
 * `https://voice.example.com`): visible ASCII only, so no NUL, no whitespace, nothing
 * a log or a header would carry differently from what was signed.
 */
export const audience = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'an audience is 1–200 visible ASCII characters (no spaces or control characters)')

export const exchangeInput = z.strictObject({
  audience,
  /** Default: every scope of the key. */
  scopes: scopes.optional(),
  ttlSeconds: z.number().int().min(1).max(MAX_DERIVED_TTL_SECONDS).default(DEFAULT_DERIVED_TTL_SECONDS),
})

export type ExchangeInput = z.infer<typeof exchangeInput>

export interface Exchanged {
  token: string
  tokenType: 'Bearer'
  parent: string
  audience: string
  scopes: string[]
  expiresAt: string
}

/**
 * token.exchange: signs a short-lived, audience-bound token for the calling access key,
 * with the signing keys sessions use (one JWKS). Nothing is stored: the token names its
 * parent, and verify checks the parent every time, through the verify cache.
 */
export async function exchangeToken(
  deps: Pick<Deps, 'config' | 'signingKeys'>,
  caller: Principal,
  input: ExchangeInput,
): Promise<Exchanged> {
  if (caller.kind !== 'access_key') throw new ForbiddenError('token.exchange takes an access key, not a session')
  const held = new Set(caller.scopes)
  const wanted = [...new Set(input.scopes ?? caller.scopes)]
  const missing = wanted.filter((scope) => !held.has(scope))
  if (missing.length > 0) throw new InsufficientScopeError(missing)
  const { kid, key } = deps.signingKeys.signing
  const issuedAt = Math.floor(Date.now() / 1000)
  let expiresAt = issuedAt + input.ttlSeconds
  // Never outlives its parent's own expiry.
  if (caller.expiresAt !== null) expiresAt = Math.min(expiresAt, Math.floor(Date.parse(caller.expiresAt) / 1000))
  const token = await new SignJWT({
    kind: 'derived',
    parent: caller.tokenId,
    acc: caller.accountId,
    env: caller.environment,
    scope: wanted.join(' '),
  })
    .setProtectedHeader({ alg: JWT_ALGORITHM, kid, typ: DERIVED_TYP })
    .setIssuer(deps.config.TOKEND_JWT_ISSUER)
    .setAudience(input.audience)
    .setSubject(caller.tokenId)
    .setJti(newId('drv'))
    .setIssuedAt(issuedAt)
    .setExpirationTime(expiresAt)
    .sign(key)
  return {
    token,
    tokenType: 'Bearer',
    parent: caller.tokenId,
    audience: input.audience,
    scopes: wanted,
    expiresAt: new Date(expiresAt * 1000).toISOString(),
  }
}

/** Whether a JWT-shaped credential is a derived token (by its `typ`); it is not yet checked. */
export function isDerivedToken(token: string): boolean {
  try {
    return decodeProtectedHeader(token).typ === DERIVED_TYP
  } catch {
    return false
  }
}

const MALFORMED = { reason: 'MALFORMED' } as const
const _FOREIGN_KEY_HEADERS = ['jku', 'jwk', 'x5u', 'x5c']

/**
 * Checks a derived token: header, EdDSA signature with one of our keys, issuer, expiry,
 * lifetime, then its parent key as verify would check the key itself — through the
 * verify cache (evicted by the parent's change events), so a revoked, disabled,
 * expired or narrowed parent takes its tokens with it at once. Forged or foreign is
 * MALFORMED; a genuine token of a bad parent gets the parent's reason.
 */
export async function checkDerived(
  deps: Deps,
  token: string,
  from?: ClientAddress,
): Promise<DerivedCredential | { reason: DenialReason; missingScopes?: string[] }> {
  const verified = await verifySigned(deps, token, {
    typ: DERIVED_TYP,
    requiredClaims: ['sub', 'aud', 'jti', 'iat', 'exp'],
  })
  if ('reason' in verified) return verified
  const { payload } = verified
  const claims = derivedClaims.safeParse(payload)
  if (!claims.success) return MALFORMED
  const { parent, acc, scope, aud, iat, exp, jti } = claims.data
  if (exp - iat > MAX_DERIVED_TTL_SECONDS) return MALFORMED

  const record = await deps.cache.lookup(parentCacheKey(parent), () => loadParent(deps, parent))
  // Signed by us, but its key is gone.
  if (record === null) return { reason: 'REVOKED' }
  if (record.accountId !== acc) return MALFORMED
  if (record.revoked) return { reason: 'REVOKED' }
  if (record.expiresAt !== null && record.expiresAt <= Date.now()) return { reason: 'EXPIRED' }
  if (record.disabled) return { reason: 'DISABLED' }
  if (!record.accountActive) return { reason: 'ACCOUNT_SUSPENDED' }
  // A key bound to networks binds its derived tokens to them too: they never reach further.
  if (record.hasCidrs && !allowedFrom(record.controls, from)) return { reason: 'IP_NOT_ALLOWED' }
  const tokenScopes = scope === '' ? [] : scope.split(' ')
  // The parent was narrowed after the exchange: the token no longer stands for what it says.
  const missingScopes = tokenScopes.filter((held) => !record.scopes.includes(held))
  if (missingScopes.length > 0) return { reason: 'INSUFFICIENT_SCOPE', missingScopes }
  deps.usage.touch(record.id)
  const expiresAt = record.expiresAt === null ? exp * 1000 : Math.min(exp * 1000, record.expiresAt)
  return {
    kind: 'derived',
    derivedId: jti,
    parentId: record.id,
    accountId: record.accountId,
    operator: record.operator,
    environment: record.environment,
    role: record.role,
    scopes: tokenScopes,
    name: record.name,
    audience: aud,
    expiresAt: new Date(expiresAt).toISOString(),
    controls: record.controls,
    metered: record.metered,
  }
}

const derivedClaims = z.object({
  kind: z.literal('derived'),
  parent: z.string().min(1).max(64),
  acc: z.string().min(1).max(64),
  scope: z.string().max(5_100),
  aud: z.string().min(1),
  jti: z.string(),
  iat: z.number(),
  exp: z.number(),
})

/**
 * A parent's entry in the verify cache, beside the digest-keyed entries of keys
 * presented themselves. Digest keys are 32 latin1 characters; these are longer and
 * start with `#`, so the two never meet. Change events evict both (change-events.ts).
 */
export function parentCacheKey(tokenId: string): string {
  return `#${tokenId}`
}

async function loadParent(deps: Pick<Deps, 'pool'>, id: string): Promise<KeyRecord | null> {
  try {
    return await findKeyRecordById(deps.pool, id)
  } catch (error) {
    throw new UnavailableError(error)
  }
}
