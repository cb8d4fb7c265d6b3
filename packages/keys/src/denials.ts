import type { Found } from './credentials.ts'

/** Why tokend refused a credential (`VerifyResult.reason`). */
export type DenialReason =
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

/** The stable `error.code` of every HTTP answer that refuses a request for its credential (SPEC §10). */
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
  | 'wrong_audience'
  | 'rate_limited'
  | 'ip_not_allowed'
  | 'usage_exceeded'
  | 'auth_unavailable'

/**
 * A refusal as HTTP says it: status, headers (RFC 6750's `WWW-Authenticate` on every
 * 401 and 403, `Retry-After` on 429) and the `{ error: { code, message } }` body.
 */
export interface Refusal {
  status: 400 | 401 | 403 | 429
  headers: Record<string, string>
  body: { error: { code: AuthErrorCode; message: string } }
}

type Problem = Extract<Found, { problem: string }>['problem']

type RfcError = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | undefined

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
  WRONG_AUDIENCE: { status: 403, code: 'wrong_audience', message: 'the derived token is for another audience' },
  RATE_LIMITED: { status: 429, code: 'rate_limited', message: 'too many requests; retry later' },
  IP_NOT_ALLOWED: {
    status: 403,
    code: 'ip_not_allowed',
    message: "the request does not come from one of the credential's allowed networks",
  },
  USAGE_EXCEEDED: { status: 403, code: 'usage_exceeded', message: "the credential's usage credits are spent" },
}

// `error` is the RFC 6750 error code (none when nothing was sent, as section 3.1 asks).
const PROBLEMS: Record<Problem, { status: 400 | 401; code: AuthErrorCode; error: RfcError; message: string }> = {
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
}

/** The answer to a request whose credential could not be found (`findCredential`'s problem). */
export function problemRefusal(problem: Problem, realm: string): Refusal {
  const { status, code, error, message } = PROBLEMS[problem]
  return refusal(status, code, message, { 'www-authenticate': challenge(realm, error, message) })
}

/**
 * The answer to a credential tokend refused: 401 `invalid_token`, 403
 * `insufficient_scope` (with the scopes the route requires), 429 with `Retry-After`.
 */
export function denialRefusal(
  denial: { reason: DenialReason; missingScopes?: string[] | undefined; retryAfterMs?: number | undefined },
  realm: string,
  requiredScopes?: readonly string[],
): Refusal {
  const { status, code, message } = DENIALS[denial.reason]
  const headers: Record<string, string> = {}
  if (status === 401) headers['www-authenticate'] = challenge(realm, 'invalid_token', message)
  // RFC 6750 has no error code for a network binding: the challenge names the realm alone.
  if (status === 403 && denial.reason === 'IP_NOT_ALLOWED')
    headers['www-authenticate'] = challenge(realm, undefined, message)
  else if (status === 403) headers['www-authenticate'] = challenge(realm, 'insufficient_scope', message, requiredScopes)
  if (status === 429) {
    headers['retry-after'] = String(Math.max(1, Math.ceil((denial.retryAfterMs ?? 1000) / 1000)))
  }
  const missing = denial.missingScopes ?? []
  return refusal(status, code, missing.length > 0 ? `${message}: ${missing.join(', ')}` : message, headers)
}

/** An RFC 6750 section 3 challenge; quotes in the texts become apostrophes. */
export function challenge(realm: string, error: RfcError, description: string, scopes?: readonly string[]): string {
  let value = `Bearer realm="${realm.replaceAll('"', '')}"`
  if (error) value += `, error="${error}", error_description="${description.replaceAll('"', "'")}"`
  if (scopes && scopes.length > 0) value += `, scope="${scopes.join(' ')}"`
  return value
}

function refusal(status: Refusal['status'], code: AuthErrorCode, message: string, headers: Record<string, string>) {
  return { status, headers: { 'cache-control': 'no-store', ...headers }, body: { error: { code, message } } }
}
