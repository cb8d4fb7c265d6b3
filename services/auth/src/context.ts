import type { Deps } from './deps.ts'
import type { Principal, RequestMeta } from './principal.ts'
import { looksLikeJwt } from './sessions/jwt.ts'
import { checkKey, principalOf, sessionPrincipalOf } from './tokens/verify.ts'

export interface Context {
  deps: Deps
  meta: RequestMeta
  /** Resolves the caller from its bearer credential (null when absent or not valid). */
  authenticate(): Promise<Principal | null>
}

/** The context without HTTP, so tests and in-process callers can use `createCaller`. */
export function createContextInner(deps: Deps, meta: RequestMeta, authorization: string | undefined): Context {
  return {
    deps,
    meta,
    async authenticate() {
      const token = bearerToken(authorization)
      if (token === null) return null
      const checked = await checkKey(deps, token)
      if ('record' in checked) {
        deps.usage.touch(checked.record.id)
        return principalOf(checked.record)
      }
      if (checked.reason === 'MALFORMED' && looksLikeJwt(token)) return sessionPrincipalOf(deps, token)
      return null
    },
  }
}

function bearerToken(header: string | undefined): string | null {
  if (!header) return null
  const match = /^Bearer +(\S+) *$/i.exec(header)
  return match?.[1] ?? null
}
