import type { RouterInputs, VerifyResult } from '@tokend/auth'

export type { VerifyResult }

/** A verified caller: everything tokend says about a valid credential. */
export type TokendPrincipal = Omit<Extract<VerifyResult, { valid: true }>, 'valid'>

/** Why tokend (or the client, offline) refused a credential. */
export type DenialReason = Extract<VerifyResult, { valid: false }>['reason']

/** What a credential must satisfy; checked by tokend, or locally against a cached result. */
export type Requirements = NonNullable<RouterInputs['token']['verify']['require']>

/**
 * A request limit counted by tokend across replicas (SPEC §9), e.g. 60 per minute per
 * account for one endpoint. Forwarded to `token.verify` only when given.
 */
export interface RateLimit {
  /** Names the limit, e.g. `'recordings.create'`. */
  name: string
  limit: number
  windowMs: number
}
