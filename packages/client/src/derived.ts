import { digestKey } from '@tokend/keys'
import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors,
  type FetchImplementation,
  jwtVerify,
} from 'jose'
import { LRUCache } from 'lru-cache'
import { TokendUnavailableError } from './errors.ts'
import type { VerifyResult } from './types.ts'

/** The `typ` header tokend gives derived tokens (token.exchange). */
export const DERIVED_TYP = 'tokend-derived+jwt'
const MAX_LIFETIME_S = 900
// Signing keys only come and go by rotation, which brings a new `kid`: the set is fetched
// again for an unknown one (at most once a second), never on a timer in the hot path.
const JWKS_COOLDOWN_MS = 1_000

/** What jose throws for a token that is not ours or not whole: refused, not an outage. */
const TOKEN_ERRORS = [
  errors.JWTClaimValidationFailed,
  errors.JWTInvalid,
  errors.JWSInvalid,
  errors.JWSSignatureVerificationFailed,
  errors.JOSEAlgNotAllowed,
  errors.JOSENotSupported,
  errors.JWKSNoMatchingKey,
  errors.JWKSMultipleMatchingKeys,
]

/** What the client reads from a derived token once its signature is checked. */
export interface DerivedClaims {
  parent: string
  accountId: string
  scopes: string[]
  audience: string
  /** Epoch milliseconds. */
  expiresAt: number
  /** The parent and the scopes: the token's entry in the local cache. */
  cacheKey: string
}

/** Whether a JWT-shaped credential says it is a derived token; nothing is checked yet. */
export function isDerivedToken(credential: string): boolean {
  try {
    return decodeProtectedHeader(credential).typ === DERIVED_TYP
  } catch {
    return false
  }
}

/**
 * Checks derived tokens offline: EdDSA signatures against tokend's
 * `/.well-known/jwks.json`, fetched once and again only for a `kid` it does not know;
 * then the type, lifetime and expiry. Whether the parent key still stands is the
 * cache's question (client.ts).
 */
export class DerivedTokens {
  readonly #jwks: ReturnType<typeof createRemoteJWKSet>
  /**
   * Tokens whose signature was checked, by digest (never the token), until they expire:
   * a signature stays good, and a SHA-256 costs a fraction of an Ed25519 verify.
   */
  readonly #checked: LRUCache<string, DerivedClaims>

  constructor(baseUrl: string, fetchJwks: typeof fetch, timeoutMs: number, maxEntries = 10_000) {
    this.#checked = new LRUCache({ max: maxEntries })
    const fetchImplementation: FetchImplementation = (url, init) => fetchJwks(url, init)
    // Beside /trpc, under whatever path tokend's base URL has.
    this.#jwks = createRemoteJWKSet(new URL(`${baseUrl.replace(/\/+$/, '')}/.well-known/jwks.json`), {
      cooldownDuration: JWKS_COOLDOWN_MS,
      cacheMaxAge: Number.POSITIVE_INFINITY,
      timeoutDuration: timeoutMs,
      [customFetch]: fetchImplementation,
    })
  }

  /**
   * The token's claims, or why it is refused. Throws `TokendUnavailableError` when the
   * key set is needed and cannot be fetched: never a guess.
   */
  async check(token: string): Promise<DerivedClaims | { reason: 'MALFORMED' | 'EXPIRED' }> {
    const digest = digestKey(token)
    const known = this.#checked.get(digest)
    if (known) return known.expiresAt > Date.now() ? known : { reason: 'EXPIRED' }
    const claims = await this.#verify(token)
    if (!('reason' in claims)) {
      const ttl = claims.expiresAt - Date.now()
      if (ttl > 0) this.#checked.set(digest, claims, { ttl })
    }
    return claims
  }

  async #verify(token: string): Promise<DerivedClaims | { reason: 'MALFORMED' | 'EXPIRED' }> {
    let payload: Record<string, unknown>
    try {
      ;({ payload } = await jwtVerify(token, this.#jwks, {
        algorithms: ['EdDSA'],
        typ: DERIVED_TYP,
        requiredClaims: ['sub', 'aud', 'jti', 'iat', 'exp'],
      }))
    } catch (error) {
      if (error instanceof errors.JWTExpired) return { reason: 'EXPIRED' }
      if (TOKEN_ERRORS.some((type) => error instanceof type)) return { reason: 'MALFORMED' }
      // The key set could not be fetched or read: tokend's trouble, not the token's.
      throw unavailable(error)
    }
    const { kind, parent, acc, scope, aud, iat, exp } = payload
    if (
      kind !== 'derived' ||
      typeof parent !== 'string' ||
      typeof acc !== 'string' ||
      typeof scope !== 'string' ||
      typeof aud !== 'string' ||
      typeof iat !== 'number' ||
      typeof exp !== 'number' ||
      exp - iat > MAX_LIFETIME_S
    ) {
      return { reason: 'MALFORMED' }
    }
    const scopes = scope === '' ? [] : scope.split(' ')
    const cacheKey = `${parent} ${[...scopes].sort().join(' ')}`
    return { parent, accountId: acc, scopes, audience: aud, expiresAt: exp * 1000, cacheKey }
  }
}

/** tokend's answer about one token of a parent, made this token's: its own scopes, audience and expiry. */
export function derivedResult(answer: VerifyResult, claims: DerivedClaims): VerifyResult {
  if (!answer.valid) return answer
  if (answer.kind !== 'derived') return { valid: false, reason: 'MALFORMED' }
  return {
    ...answer,
    // A copy: the claims are shared by every verify of the token.
    scopes: [...claims.scopes],
    audience: claims.audience,
    expiresAt: new Date(claims.expiresAt).toISOString(),
  }
}

function unavailable(error: unknown): TokendUnavailableError {
  const why = error instanceof Error ? error.message : String(error)
  return new TokendUnavailableError(`tokend's key set is unavailable: ${why}`, undefined, { cause: error })
}
