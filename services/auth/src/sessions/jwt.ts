import type { Environment } from '@tokend/keys'
import { decodeProtectedHeader, errors, type JWTPayload, jwtVerify, SignJWT } from 'jose'
import type { Deps } from '../deps.ts'
import { findDirectRecord } from '../directs/direct.repository.ts'
import { UnavailableError } from '../errors.ts'
import type { Role } from '../principal.ts'
import type { DenialReason } from '../tokens/verify.ts'
import { findSessionRecord } from './session.repository.ts'
import { JWT_ALGORITHM } from './signing-keys.ts'

export const SESSION_LIFETIME_MS = 7 * 86_400_000
export const DIRECT_LIFETIME_MS = 4 * 3_600_000

/** A session as verification needs it, loaded with its user and account. */
export interface SessionRecord {
  kind: 'session'
  /** The session id (`ses_…`), the token's `jti`. */
  id: string
  userId: string
  username: string
  accountId: string
  role: Role
  operator: boolean
  /** Trial accounts work in the sandbox: their people's sessions are `test`, paid ones `live`. */
  environment: Environment
  accountActive: boolean
  revoked: boolean
  expiresAt: number
}

/** A direct link as verification needs it; a deleted link has no record. */
export interface DirectRecord {
  kind: 'direct'
  /** The direct link id (`dir_…`), the token's `sub`. */
  id: string
  accountId: string
  resourceType: string
  resourceId: string
  environment: Environment
  operator: boolean
  accountActive: boolean
  revoked: false
  expiresAt: null
}

export type JwtRecord = SessionRecord | DirectRecord

export type CheckedJwt = { record: JwtRecord; expiresAt: number } | { reason: DenialReason }

const JWT_SHAPE = /^eyJ[\w-]*\.[\w-]+\.[\w-]+$/
// Headers naming a key other than ours. jose never follows them; tokend refuses them outright.
const FOREIGN_KEY_HEADERS = ['jku', 'jwk', 'x5u', 'x5c']
const MALFORMED = { reason: 'MALFORMED' } as const

/** Compact JWS shape: tells a JWT from an access key before any work. */
export function looksLikeJwt(token: string): boolean {
  return JWT_SHAPE.test(token)
}

/** Signs a session or direct token with this replica's current signing key. */
export async function signJwt(
  deps: Pick<Deps, 'config' | 'signingKeys'>,
  claims: { kind: 'session' | 'direct'; subject: string; id: string; accountId: string; lifetimeMs: number },
): Promise<{ token: string; expiresAt: Date }> {
  const { kid, key } = deps.signingKeys.signing
  const issuedAt = Math.floor(Date.now() / 1000)
  const expiresAt = issuedAt + claims.lifetimeMs / 1000
  const token = await new SignJWT({ kind: claims.kind, acc: claims.accountId })
    .setProtectedHeader({ alg: JWT_ALGORITHM, kid, typ: 'JWT' })
    .setIssuer(deps.config.TOKEND_JWT_ISSUER)
    .setAudience(deps.config.TOKEND_JWT_AUDIENCE)
    .setSubject(claims.subject)
    .setJti(claims.id)
    .setIssuedAt(issuedAt)
    .setExpirationTime(expiresAt)
    .sign(key)
  return { token, expiresAt: new Date(expiresAt * 1000) }
}

/**
 * Checks a JWT that tokend signed (sessions, direct links, derived tokens): its header
 * names one of our signing keys and nothing foreign, and its signature, issuer, type and
 * claims hold. Its payload, or why not: EXPIRED, else MALFORMED.
 */
export async function verifySigned(
  deps: Pick<Deps, 'signingKeys' | 'config'>,
  token: string,
  expected: { typ: string; audience?: string; requiredClaims: string[] },
): Promise<{ payload: JWTPayload } | { reason: 'MALFORMED' | 'EXPIRED' }> {
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(token)
  } catch {
    return MALFORMED
  }
  if (header.alg !== JWT_ALGORITHM || typeof header.kid !== 'string') return MALFORMED
  if (FOREIGN_KEY_HEADERS.some((name) => name in header)) return MALFORMED
  const key = await deps.signingKeys.verifying(header.kid)
  if (!key) return MALFORMED
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: [JWT_ALGORITHM],
      issuer: deps.config.TOKEND_JWT_ISSUER,
      ...(expected.audience !== undefined && { audience: expected.audience }),
      typ: expected.typ,
      requiredClaims: expected.requiredClaims,
    })
    return { payload }
  } catch (error) {
    return error instanceof errors.JWTExpired ? { reason: 'EXPIRED' } : MALFORMED
  }
}

/**
 * Checks a session or direct token: header, signature (EdDSA only, our keys only),
 * issuer, audience, expiry, then the session or link it stands for (cached, evicted by
 * change events) and, for a session, the row's own expiry. Anything forged or foreign
 * is MALFORMED; a genuine token whose session was logged out, whose user or link was
 * removed, is REVOKED.
 */
export async function checkJwt(deps: Deps, token: string): Promise<CheckedJwt> {
  const verified = await verifySigned(deps, token, {
    typ: 'JWT',
    audience: deps.config.TOKEND_JWT_AUDIENCE,
    requiredClaims: ['sub', 'jti', 'iat', 'exp'],
  })
  if ('reason' in verified) return verified
  const { payload } = verified

  const { kind, acc, sub, jti, exp } = payload
  let record: JwtRecord | null
  if (kind === 'session' && typeof jti === 'string') {
    record = await deps.jwtCache.lookup(jti, (id) => fromDb(() => findSessionRecord(deps.db, id)))
  } else if (kind === 'direct' && typeof sub === 'string') {
    record = await deps.jwtCache.lookup(sub, (id) => fromDb(() => findDirectRecord(deps.db, id)))
  } else {
    return MALFORMED
  }
  // Signed by us, but what it stood for is gone: a removed user (with its sessions) or a deleted link.
  if (record === null) return { reason: 'REVOKED' }
  if (record.accountId !== acc || (record.kind === 'session' && record.userId !== sub)) return MALFORMED
  if (record.revoked) return { reason: 'REVOKED' }
  if (!record.accountActive) return { reason: 'ACCOUNT_SUSPENDED' }
  // A session lives as long as its row says, whatever later `exp` a token re-signed by
  // someone holding the signing key claims.
  const expiresAt =
    record.kind === 'session' ? Math.min(record.expiresAt, (exp as number) * 1000) : (exp as number) * 1000
  if (expiresAt <= Date.now()) return { reason: 'EXPIRED' }
  return { record, expiresAt }
}

async function fromDb<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (error) {
    throw new UnavailableError(error)
  }
}
