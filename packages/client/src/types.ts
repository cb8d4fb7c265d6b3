import type { RouterInputs, RouterOutputs, VerifyResult } from '@tokend/auth'

/**
 * tokend's answer to `token.verify`: a principal, or a denial with its reason (a denial
 * is a result, not an error).
 *
 * @example
 * ```ts
 * const result: VerifyResult = await tokend.verify(key)
 * if (!result.valid && result.reason === 'REVOKED') alertSecurityTeam()
 * ```
 */
export type { VerifyResult }

/**
 * A verified caller: everything tokend says about a valid credential. `requireAuth`
 * puts it on `req.auth`; partition data by `accountId` and `environment`.
 *
 * @example
 * ```ts
 * const { accountId, environment, scopes }: TokendPrincipal = req.auth!
 * ```
 */
export type TokendPrincipal = Omit<Extract<VerifyResult, { valid: true }>, 'valid'>

/**
 * Why tokend (or the client, offline, for `MALFORMED`) refused a credential.
 *
 * @example
 * ```ts
 * const final: DenialReason[] = ['REVOKED', 'EXPIRED']
 * ```
 */
export type DenialReason = Extract<VerifyResult, { valid: false }>['reason']

/**
 * What a credential must satisfy; checked by tokend, or locally against a cached answer
 * exactly as tokend checks it.
 *
 * @example
 * ```ts
 * const require: Requirements = { scopes: ['recordings:write'], environment: 'live' }
 * await tokend.verify(key, require)
 * ```
 */
export type Requirements = NonNullable<RouterInputs['token']['verify']['require']>

/**
 * A request limit counted by tokend across replicas (SPEC §9), e.g. 60 per minute per
 * account for one endpoint. Forwarded to `token.verify` only when given.
 *
 * @example
 * ```ts
 * app.post('/v1/recordings', tokend.requireAuth({ ratelimit: { name: 'recordings.create', limit: 60, windowMs: 60_000 } }), create)
 * ```
 */
export interface RateLimit {
  /** Names the limit, e.g. `'recordings.create'`. */
  name: string
  limit: number
  windowMs: number
}

/**
 * What `tokend.exchange` takes: the audience the derived token is for, a subset of the
 * key's scopes (default: all of them) and a lifetime of 1–900 s (default 300).
 *
 * @example
 * ```ts
 * const input: ExchangeInput = { audience: 'voice-api', scopes: ['recordings:read'], ttlSeconds: 600 }
 * ```
 */
export type ExchangeInput = RouterInputs['token']['exchange']

/**
 * A derived token as `tokend.exchange` returns it.
 *
 * @example
 * ```ts
 * const { token, expiresAt }: DerivedToken = await tokend.exchange({ audience: 'voice-api' })
 * ```
 */
export type DerivedToken = RouterOutputs['token']['exchange']
