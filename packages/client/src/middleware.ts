import type { RequestHandler, Response } from 'express'
import type { TokendClient } from './client.ts'
import { findCredential } from './credentials.ts'
import type { DenialReason, RateLimit, Requirements, TokendPrincipal } from './types.ts'

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
  /** A request limit counted by tokend (429 `rate_limited` with `Retry-After`). */
  ratelimit?: RateLimit
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
export type AuthErrorCode =
  | 'missing_credential'
  | 'multiple_credentials'
  | 'wrong_credential_parameter'
  | 'malformed_credential'
  | 'unknown_credential'
  | 'expired_credential'
  | 'revoked_credential'
  | 'disabled_credential'
  | 'account_suspended'
  | 'insufficient_scope'
  | 'wrong_environment'
  | 'rate_limited'
  | 'auth_unavailable'

const DENIALS: Record<DenialReason, { status: 401 | 403 | 429; code: AuthErrorCode; message: string }> = {
  MALFORMED: {
    status: 401,
    code: 'malformed_credential',
    message: 'the credential is not a valid access key or token',
  },
  NOT_FOUND: { status: 401, code: 'unknown_credential', message: 'the credential is not known' },
  EXPIRED: { status: 401, code: 'expired_credential', message: 'the credential has expired' },
  REVOKED: { status: 401, code: 'revoked_credential', message: 'the credential has been revoked' },
  DISABLED: { status: 401, code: 'disabled_credential', message: 'the credential is disabled' },
  ACCOUNT_SUSPENDED: { status: 401, code: 'account_suspended', message: "the credential's account is suspended" },
  INSUFFICIENT_SCOPE: { status: 403, code: 'insufficient_scope', message: 'the credential lacks a required scope' },
  WRONG_ENVIRONMENT: { status: 403, code: 'wrong_environment', message: 'the credential is for another environment' },
  RATE_LIMITED: { status: 429, code: 'rate_limited', message: 'too many requests; retry later' },
}

// `error` is the RFC 6750 error code for WWW-Authenticate (none when nothing was sent).
const PROBLEMS = {
  missing: {
    status: 401,
    code: 'missing_credential',
    error: undefined,
    message: 'send a credential: Authorization: Bearer <key>, ?accesskey=<access key> or ?token=<JWT>',
  },
  bad_header: {
    status: 401,
    code: 'malformed_credential',
    error: 'invalid_token',
    message: 'the Authorization header must be "Bearer <credential>"',
  },
  wrong_parameter: {
    status: 401,
    code: 'wrong_credential_parameter',
    error: 'invalid_token',
    message: '?accesskey= takes access keys and ?token= takes JWTs; the credential was sent in the other one',
  },
  multiple: {
    status: 400,
    code: 'multiple_credentials',
    error: 'invalid_request',
    message: 'send exactly one credential',
  },
} as const

/**
 * Express middleware guarding a route with tokend. It takes the credential from
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
  const { ratelimit, ...require } = options
  const verifyOptions = ratelimit ? { ...require, ratelimit } : require
  const realm = client.realm.replaceAll('"', '')
  return async (req, res, next) => {
    const found = findCredential(req.headers.authorization, req.originalUrl)
    if ('problem' in found) {
      const problem = PROBLEMS[found.problem]
      res.setHeader('www-authenticate', challenge(realm, problem.error, problem.message))
      sendError(res, problem.status, problem.code, problem.message)
      return
    }
    let result: Awaited<ReturnType<TokendClient['verify']>>
    try {
      result = await client.verify(found.credential, verifyOptions)
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
    const denial = DENIALS[result.reason]
    if (denial.status === 401) res.setHeader('www-authenticate', challenge(realm, 'invalid_token', denial.message))
    if (result.reason === 'INSUFFICIENT_SCOPE') {
      res.setHeader('www-authenticate', challenge(realm, 'insufficient_scope', denial.message, options.scopes))
    }
    if (denial.status === 429)
      res.setHeader('retry-after', String(Math.max(1, Math.ceil((result.retryAfterMs ?? 1000) / 1000))))
    const message =
      result.missingScopes && result.missingScopes.length > 0
        ? `${denial.message}: ${result.missingScopes.join(', ')}`
        : denial.message
    sendError(res, denial.status, denial.code, message)
  }
}

function challenge(realm: string, error: string | undefined, description: string, scopes?: string[]): string {
  let value = `Bearer realm="${realm}"`
  if (error) value += `, error="${error}", error_description="${description.replaceAll('"', "'")}"`
  if (scopes && scopes.length > 0) value += `, scope="${scopes.join(' ')}"`
  return value
}

function sendError(res: Response, status: number, code: AuthErrorCode, message: string): void {
  res.status(status).setHeader('cache-control', 'no-store')
  res.json({ error: { code, message } })
}
