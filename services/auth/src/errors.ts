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
  | 'plan_required'
  | 'not_found'
  | 'token_revoked'
  | 'token_limit_reached'
  | 'username_taken'
  | 'conflict'
  | 'rate_limited'
  | 'unavailable'

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
  constructor(message = 'not allowed') {
    super('forbidden', message)
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
