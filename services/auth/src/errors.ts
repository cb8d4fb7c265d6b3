/**
 * Domain errors. Services throw these; the tRPC layer maps each to an HTTP status and
 * a stable `reason` in one place (trpc.ts), keeping the original as `cause`.
 */
export class DomainError extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = new.target.name
  }
}

export type Reason =
  | 'invalid_input'
  | 'invalid_token'
  | 'invalid_credentials'
  | 'forbidden'
  | 'insufficient_scope'
  | 'plan_required'
  | 'not_found'
  | 'token_revoked'
  | 'token_limit_reached'
  | 'username_taken'
  | 'conflict'
  | 'rate_limited'
  | 'ip_not_allowed'
  | 'usage_exceeded'
  | 'unavailable'

/**
 * Every `reason` an error may carry, with its HTTP status and what it means: the one
 * source of the README's error table (checked by errors.test.ts) and of the OpenAPI
 * error schema. `internal` is no domain error: it is what an unexpected one becomes.
 * `title` is the RFC 9457 problem title of REST errors: fixed per reason.
 */
export const ERROR_REASONS: Record<Reason | 'internal', { title: string; status: number; meaning: string }> = {
  invalid_input: {
    title: 'Invalid input',
    status: 400,
    meaning:
      'The input failed its schema or a rule; `issues` names the fields. Also malformed JSON, and over REST a wrong method (405), an oversized body (413) or a body that is not JSON (415).',
  },
  invalid_token: {
    title: 'Invalid or missing credential',
    status: 401,
    meaning:
      'No credential, or one that is malformed, unknown, expired, revoked, disabled or of a suspended account. Carries `WWW-Authenticate: Bearer`.',
  },
  invalid_credentials: {
    title: 'Wrong username or password',
    status: 401,
    meaning: '`auth.login`: unknown username or wrong password (one answer for both).',
  },
  forbidden: {
    title: 'Forbidden',
    status: 403,
    meaning:
      'The credential is valid but may not do this: a manager changing something, another account, a `tokend:*` scope it lacks, a test key creating live credentials, closed sign-up, a suspended account.',
  },
  insufficient_scope: {
    title: 'Insufficient scope',
    status: 403,
    meaning:
      '`token.exchange`: a derived token may hold only scopes of the key it is exchanged for; the message names the others.',
  },
  plan_required: {
    title: 'Plan required',
    status: 403,
    meaning: "The account's plan does not allow it: live keys and links need `paid`.",
  },
  not_found: { title: 'Not found', status: 404, meaning: 'No such object (or route).' },
  token_revoked: {
    title: 'Key revoked',
    status: 409,
    meaning: 'The key is revoked, which is final: it cannot be disabled, enabled or rotated.',
  },
  token_limit_reached: {
    title: 'Key limit reached',
    status: 409,
    meaning: 'The account holds its maximum of active keys (`TOKEND_MAX_ACTIVE_KEYS`); revoke one first.',
  },
  username_taken: {
    title: 'Username taken',
    status: 409,
    meaning: 'The username is in use (`user.create`, `auth.signup`).',
  },
  conflict: {
    title: 'Conflict',
    status: 409,
    meaning:
      "The change contradicts the current state: removing or demoting an account's last admin user, disabling or revoking the operator account's last admin credential, moving an account that holds live keys to trial.",
  },
  rate_limited: {
    title: 'Rate limited',
    status: 429,
    meaning:
      'Too many key creations or sign-in attempts: `Retry-After` (seconds) and `retryAfterMs` say how long to wait.',
  },
  ip_not_allowed: {
    title: 'Network not allowed',
    status: 403,
    meaning:
      'The key is bound to networks (`allowedCidrs`) and the request comes from outside them. Verify answers such a key with the result `IP_NOT_ALLOWED` instead.',
  },
  usage_exceeded: {
    title: 'Usage credits spent',
    status: 403,
    meaning:
      "The key's usage credits are spent: the edge (forward-auth, ext_authz) and `@tokend/client`'s middleware refuse with it. `token.verify` answers `USAGE_EXCEEDED` as a result (200), with `remaining`.",
  },
  unavailable: {
    title: 'Service unavailable',
    status: 503,
    meaning: 'The database cannot be reached; nothing was written. Try again.',
  },
  internal: {
    title: 'Internal error',
    status: 500,
    meaning: "An unexpected error: the message says nothing more, tokend's log holds it under the request id.",
  },
}

export class InvalidInputError extends DomainError {
  /** `field` names the input field at fault; it becomes the error's one issue. */
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super('invalid_input', message)
  }
}

/** Login failed: the same error whether the username is unknown or the password wrong. */
export class InvalidCredentialsError extends DomainError {
  constructor() {
    super('invalid_credentials', 'unknown username or wrong password')
  }
}

export class PlanRequiredError extends DomainError {
  constructor(message: string) {
    super('plan_required', message)
  }
}

export class ConflictError extends DomainError {}

export class RateLimitedError extends DomainError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super('rate_limited', message)
  }
}

export class UnauthenticatedError extends DomainError {
  constructor(message = 'a valid bearer credential is required') {
    super('invalid_token', message)
  }
}

export class ForbiddenError extends DomainError {
  /** `missingScopes`: the `tokend:*` scopes the credential lacks, when that is why. */
  constructor(
    message = 'not allowed',
    readonly missingScopes?: readonly string[],
  ) {
    super('forbidden', message)
  }
}

/** A derived token was asked for scopes its key does not hold (token.exchange). */
export class InsufficientScopeError extends DomainError {
  constructor(readonly missingScopes: string[]) {
    super(
      'insufficient_scope',
      `the key does not hold ${missingScopes.join(', ')}; a derived token gets a subset of its scopes`,
    )
  }
}

export class NotFoundError extends DomainError {
  constructor(what: string) {
    super('not_found', `${what} not found`)
  }
}

export class TokenRevokedError extends DomainError {
  constructor() {
    super('token_revoked', 'the key is revoked; revocation is final — issue a new key')
  }
}

/** A key bound to networks called tokend from outside them. */
export class IpNotAllowedError extends DomainError {
  constructor() {
    super(
      'ip_not_allowed',
      "this key may be used only from its allowed networks (allowedCidrs); this request's address is not in them",
    )
  }
}

export class UnavailableError extends DomainError {
  constructor(cause: unknown, message = 'the database is unavailable; try again') {
    super('unavailable', message, { cause })
  }
}

export class TokenLimitError extends DomainError {
  constructor(max: number) {
    super('token_limit_reached', `the account already has ${max} active keys; revoke one before creating another`)
  }
}
