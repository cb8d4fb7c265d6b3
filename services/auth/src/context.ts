import type { IncomingMessage } from 'node:http'
import type { Deps } from './deps.ts'
import { type RequestInfo, requestMeta } from './http/request-meta.ts'
import type { MaybePromise } from './maybe-promise.ts'
import type { Principal, RequestMeta } from './principal.ts'
import type { ClientAddress } from './tokens/key-controls.ts'
import { principalOf } from './tokens/verify.ts'

export interface Context {
  deps: Deps
  meta: RequestMeta
  /** Resolves the caller from its bearer credential (null when absent or not valid); once per request. */
  authenticate(): Promise<Principal | null>
  /** Resolves the caller again, now: for long-lived requests (change streams) that must end with their credential. */
  recheck(): Promise<Principal | null>
}

/** The context without HTTP, so tests and in-process callers can use `createCaller`. */
export function createContextInner(deps: Deps, meta: RequestMeta, authorization: string | undefined): Context {
  const recheck = async () => callerOf(deps, authorization, meta)
  let caller: Promise<Principal | null> | undefined
  return {
    deps,
    meta,
    authenticate() {
      caller ??= recheck()
      return caller
    },
    recheck,
  }
}

/**
 * The caller of a request from its Authorization header, as every context resolves it:
 * null without a valid bearer credential. Answered now when its key is cached.
 */
export function callerOf(
  deps: Deps,
  authorization: string | undefined,
  from?: ClientAddress,
): MaybePromise<Principal | null> {
  const token = bearerToken(authorization)
  return token === null ? null : principalOf(deps, token, from)
}

/** The context of an HTTP request, for every transport (tRPC, REST, the verify fast path). */
export function createContext(deps: Deps, req: IncomingMessage, info: RequestInfo): Context {
  return createContextInner(deps, requestMeta(req, info), req.headers.authorization)
}

function bearerToken(header: string | undefined): string | null {
  if (!header) return null
  const match = /^Bearer +(\S+) *$/i.exec(header)
  return match?.[1] ?? null
}
