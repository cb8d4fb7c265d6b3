import {
  denialRefusal,
  findCredential,
  type AuthErrorCode as KeysAuthErrorCode,
  problemRefusal,
  type Refusal,
} from '@tokend/keys'
import type { RequestHandler, Response } from 'express'
import type { TokendClient } from './client.ts'
import { activeTraceparent, isTraceparent } from './trace-context.ts'
import type { RateLimit, Requirements, TokendPrincipal } from './types.ts'

declare global {
  namespace Express {
    interface Request {
      /** The verified caller, set by `requireAuth()`; absent on routes it does not guard. */
      auth?: TokendPrincipal
    }
  }
}

/**
 * What a route requires of its caller's credential.
 *
 * @example
 * ```ts
 * router.delete('/recordings/:id', tokend.requireAuth({ scopes: ['recordings:write'], environment: 'live' }), remove)
 * ```
 */
export interface RequireAuthOptions {
  /** Scopes the credential must hold, e.g. `['recordings:write']` (403 `insufficient_scope`). */
  scopes?: string[]
  /** The environment the credential must be for (403 `wrong_environment`). */
  environment?: Requirements['environment']
  /** `'admin'` refuses manager keys (403 `insufficient_scope`). */
  role?: Requirements['role']
  /**
   * Derived tokens must have been exchanged for this audience, e.g. `'voice-api'`
   * (403 `wrong_audience`); access keys and sessions are bound to no audience.
   */
  audience?: string
  /** A request limit counted by tokend (429 `rate_limited` with `Retry-After`). */
  ratelimit?: RateLimit
  /** Usage credits each request spends, for keys with credits (default 1; 403 `usage_exceeded` when spent). */
  cost?: number
}

/**
 * The stable `error.code` of every answer `requireAuth` gives instead of calling the route.
 *
 * @example
 * ```ts
 * const body = (await response.json()) as { error: { code: AuthErrorCode; message: string } }
 * if (body.error.code === 'revoked_credential') forgetStoredKey()
 * ```
 */
export type AuthErrorCode = KeysAuthErrorCode

/**
 * Express middleware guarding a route with tokend. It passes the caller's address
 * (`req.ip`, which follows express's `trust proxy` setting) as `clientIp`, for keys
 * bound to networks. It takes the credential from
 * `Authorization: Bearer …`, `?accesskey=` (access keys only) or `?token=` (JWTs only),
 * refuses malformed access keys offline, and answers `{ error: { code, message } }`
 * with 401 (+ `WWW-Authenticate`), 403 or 429 (+ `Retry-After`); 503 when tokend
 * cannot answer. On success the principal is on `req.auth`. The credential is never
 * echoed or logged.
 *
 * @example
 * ```ts
 * import { createTokendClient, requireAuth } from '@tokend/client'
 *
 * const tokend = createTokendClient({ url, serviceKey })
 * app.delete('/v1/recordings/:id', requireAuth(tokend, { scopes: ['recordings:write'] }), handler)
 * ```
 */
export function requireAuth(
  client: Pick<TokendClient, 'verify' | 'realm' | 'reportFailure'>,
  options: RequireAuthOptions = {},
): RequestHandler {
  const { ratelimit, cost, ...require } = options
  const verifyOptions = {
    ...require,
    ...(ratelimit !== undefined && { ratelimit }),
    ...(cost !== undefined && { cost }),
  }
  const realm = client.realm
  return async (req, res, next) => {
    const found = findCredential(req.headers.authorization, req.originalUrl)
    if ('problem' in found) {
      send(res, problemRefusal(found.problem, realm))
      return
    }
    let result: Awaited<ReturnType<TokendClient['verify']>>
    try {
      // The application's own active span first (client.ts), else the trace its caller sent.
      const traceparent = activeTraceparent() ?? req.headers.traceparent
      const fromAddress = req.ip === undefined ? verifyOptions : { ...verifyOptions, clientIp: req.ip }
      result = await client.verify(
        found.credential,
        isTraceparent(traceparent) ? { ...fromAddress, traceparent } : fromAddress,
      )
    } catch (error) {
      client.reportFailure(error)
      res.setHeader('retry-after', '1')
      sendError(res, 503, 'auth_unavailable', 'authentication is unavailable; try again shortly')
      return
    }
    if (result.valid) {
      const { valid: _valid, ...principal } = result
      req.auth = principal
      next()
      return
    }
    send(res, denialRefusal(result, realm, options.scopes))
  }
}

function send(res: Response, refusal: Refusal): void {
  res.status(refusal.status).set(refusal.headers).json(refusal.body)
}

function sendError(res: Response, status: number, code: AuthErrorCode, message: string): void {
  res.status(status).setHeader('cache-control', 'no-store')
  res.json({ error: { code, message } })
}
