import type { Environment } from '@tokend/keys'
import type { KeyControls } from './tokens/key-controls.ts'

export type Role = 'admin' | 'manager'

/** Reserved scopes that grant rights in tokend itself. */
export const TOKEND_SCOPES = ['tokend:verify', 'tokend:scanner'] as const

/** The authenticated caller of a procedure: an access key, or a person's session. */
export type Principal = AccessKeyPrincipal | SessionPrincipal

export interface AccessKeyPrincipal {
  kind: 'access_key'
  tokenId: string
  accountId: string
  operator: boolean
  environment: Environment
  role: Role
  scopes: readonly string[]
  name: string
  expiresAt: string | null
}

/** A signed-in user. Sessions manage an account; they hold no `tokend:*` scope. */
export interface SessionPrincipal {
  kind: 'session'
  sessionId: string
  userId: string
  username: string
  accountId: string
  operator: boolean
  /** The account's sandbox or production: `test` on trial accounts, `live` on paid ones. */
  environment: Environment
  role: Role
  scopes: readonly string[]
  expiresAt: string
}

/** A direct token: it reaches one resource of its account, and nothing in tokend. */
export interface DirectCredential {
  kind: 'direct'
  directId: string
  accountId: string
  operator: boolean
  environment: Environment
  resource: { type: string; id: string }
  expiresAt: string
}

/**
 * A derived token (SPEC §14): a short-lived, audience-bound JWT exchanged for an access
 * key, holding a subset of its scopes. It reaches its audience, nothing in tokend.
 */
export interface DerivedCredential {
  kind: 'derived'
  /** The token's own id (its `jti`, `drv_…`). */
  derivedId: string
  /** The access key it was exchanged for. */
  parentId: string
  accountId: string
  operator: boolean
  environment: Environment
  role: Role
  scopes: readonly string[]
  /** The parent key's name. */
  name: string
  audience: string
  expiresAt: string
  /** The parent key's meta and networks, added to verify's answer as a key's are. */
  controls: KeyControls | null
  /** The parent key has usage credits: each verify of the token spends them. */
  metered: boolean
}

/** Whatever a valid bearer credential stands for. */
export type Credential = Principal | DirectCredential | DerivedCredential

/** Where a request came from, recorded with every audit event. */
export interface RequestMeta {
  requestId: string | null
  address: string | null
  userAgent: string | null
}

/** Who did something: a principal in a request, or the system itself. */
export interface Actor extends RequestMeta {
  type: 'access_key' | 'user' | 'system' | 'anonymous' | 'partner'
  id: string | null
}

export function actorOf(principal: Principal, meta: RequestMeta): Actor {
  return { type: principal.kind === 'session' ? 'user' : 'access_key', id: principalId(principal), ...metaFields(meta) }
}

/** A copy of `meta` that spreads: a request's meta computes its address in a getter. */
export function metaFields({ requestId, address, userAgent }: RequestMeta): RequestMeta {
  return { requestId, address, userAgent }
}

/** The id recorded as an object's creator: the key's, or the signed-in user's. */
export function principalId(principal: Principal): string {
  return principal.kind === 'session' ? principal.userId : principal.tokenId
}

/** Someone without credentials (signup, login, boot). */
export function anonymous(meta: RequestMeta): Actor {
  return { type: 'anonymous', id: null, ...metaFields(meta) }
}

export const SYSTEM_ACTOR: Actor = { type: 'system', id: null, requestId: null, address: null, userAgent: null }
