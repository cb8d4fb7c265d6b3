/**
 * What `@tokend/auth` contributes to the client's public types, for the declarations
 * published with the package (tsup.config.ts maps `@tokend/auth` here): the verify wire
 * types in full, and the router untyped (`trpc` is `TRPCClient<any>` outside the monorepo), so the package's types need
 * neither tokend's sources nor its dependencies. test/published-types.test.ts checks that
 * these equal tokend's own.
 */

type Environment = 'live' | 'test'
type Role = 'admin' | 'manager'
type DenialReason =
  | 'MALFORMED'
  | 'NOT_FOUND'
  | 'EXPIRED'
  | 'REVOKED'
  | 'DISABLED'
  | 'ACCOUNT_SUSPENDED'
  | 'INSUFFICIENT_SCOPE'
  | 'WRONG_ENVIRONMENT'
  | 'WRONG_AUDIENCE'
  | 'RATE_LIMITED'
  | 'IP_NOT_ALLOWED'
  | 'USAGE_EXCEEDED'

/** What a key's controls add to a valid answer: an access key's own, a derived token's parent's. */
interface KeyControlsAnswer {
  /** The key's `meta`, when it has one. */
  meta?: Readonly<Record<string, unknown>>
  /** The networks the key is bound to, when it is (the answer then holds only for this clientIp). */
  allowedCidrs?: readonly string[]
  /** Usage credits left after this verify, as this replica sees them, when the key has credits (a derived token spends its parent's). */
  remaining?: number
}

export type VerifyResult =
  | ({
      valid: true
      kind: 'access_key'
      tokenId: string
      accountId: string
      environment: Environment
      role: Role
      scopes: string[]
      name: string
      expiresAt: string | null
    } & KeyControlsAnswer)
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
  | ({
      valid: true
      kind: 'derived'
      /** The parent access key's id: a derived token acts for its key. */
      tokenId: string
      accountId: string
      environment: Environment
      role: Role
      /** The token's scopes, a subset of its key's. */
      scopes: string[]
      /** The parent key's name. */
      name: string
      expiresAt: string
      /** The service the token was exchanged for. */
      audience: string
    } & KeyControlsAnswer)
  | { valid: false; reason: DenialReason; missingScopes?: string[]; retryAfterMs?: number; remaining?: number }

export interface RouterInputs {
  token: {
    verify: {
      token: string
      require?:
        | {
            scopes?: string[] | undefined
            environment?: Environment | undefined
            role?: Role | undefined
            audience?: string | undefined
          }
        | undefined
      ratelimit?: { name: string; limit: number; windowMs: number } | undefined
      clientIp?: string | undefined
      cost?: number | undefined
    }
    exchange: { audience: string; scopes?: string[] | undefined; ttlSeconds?: number | undefined }
  }
}

export interface RouterOutputs {
  token: {
    exchange: {
      token: string
      tokenType: 'Bearer'
      parent: string
      audience: string
      scopes: string[]
      expiresAt: string
    }
  }
}

// biome-ignore lint/suspicious/noExplicitAny: tokend's procedures are untyped outside the monorepo
export type AppRouter = any
