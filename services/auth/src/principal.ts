import type { Environment } from '@tokend/keys'

export type Role = 'admin' | 'manager'

/** Reserved scopes that grant rights in tokend itself. */
export const TOKEND_SCOPES = ['tokend:verify', 'tokend:scanner'] as const

/** The authenticated caller of a procedure. */
export interface Principal {
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

/** Where a request came from, recorded with every audit event. */
export interface RequestMeta {
  requestId: string | null
  address: string | null
  userAgent: string | null
}

/** Who did something: a principal in a request, or the system itself. */
export interface Actor extends RequestMeta {
  type: 'access_key' | 'system'
  id: string | null
}

export function actorOf(principal: Principal, meta: RequestMeta): Actor {
  return { type: principal.kind, id: principal.tokenId, ...meta }
}

export const SYSTEM_ACTOR: Actor = { type: 'system', id: null, requestId: null, address: null, userAgent: null }
