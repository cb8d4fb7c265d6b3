import { getTRPCErrorFromUnknown, getTRPCErrorShape, initTRPC, TRPCError } from '@trpc/server'

type TRPC_ERROR_CODE_KEY = TRPCError['code']

import { challenge } from '@tokend/keys'
import type { OpenApiMeta } from 'trpc-to-openapi'
import { ZodError, type ZodType } from 'zod'
import type { Context } from './context.ts'
import { isDatabaseUnavailable } from './db/errors.ts'
import { REALM } from './edge/edge-check.ts'
import {
  DomainError,
  ForbiddenError,
  InsufficientScopeError,
  InvalidInputError,
  RateLimitedError,
  type Reason,
  UnauthenticatedError,
  UnavailableError,
} from './errors.ts'
import { nulPath } from './validation.ts'

export const CODE_OF: Record<Reason, TRPC_ERROR_CODE_KEY> = {
  invalid_input: 'BAD_REQUEST',
  invalid_token: 'UNAUTHORIZED',
  invalid_credentials: 'UNAUTHORIZED',
  forbidden: 'FORBIDDEN',
  insufficient_scope: 'FORBIDDEN',
  plan_required: 'FORBIDDEN',
  not_found: 'NOT_FOUND',
  token_revoked: 'CONFLICT',
  token_limit_reached: 'CONFLICT',
  username_taken: 'CONFLICT',
  conflict: 'CONFLICT',
  rate_limited: 'TOO_MANY_REQUESTS',
  ip_not_allowed: 'FORBIDDEN',
  usage_exceeded: 'FORBIDDEN',
  unavailable: 'SERVICE_UNAVAILABLE',
}

// Errors tRPC raises itself (bad JSON, unknown procedure, oversized body) get a reason too.
const REASON_OF: Partial<Record<TRPC_ERROR_CODE_KEY, string>> = {
  PARSE_ERROR: 'invalid_input',
  BAD_REQUEST: 'invalid_input',
  PAYLOAD_TOO_LARGE: 'invalid_input',
  UNSUPPORTED_MEDIA_TYPE: 'invalid_input',
  METHOD_NOT_SUPPORTED: 'invalid_input',
  NOT_FOUND: 'not_found',
  UNAUTHORIZED: 'invalid_token',
  FORBIDDEN: 'forbidden',
  TOO_MANY_REQUESTS: 'rate_limited',
  SERVICE_UNAVAILABLE: 'unavailable',
}

/**
 * Procedure metadata: `openapi` puts a procedure on the REST API (http/rest.ts).
 * `documentedOutput` describes a result to OpenAPI without validating it on every
 * call, for procedures on the hot path (token.verify) where `.output()` would cost.
 */
export type Meta = OpenApiMeta<{ documentedOutput?: ZodType }>

/** What every error tells the caller, over tRPC and REST alike. */
export interface ErrorDescription {
  reason: string
  message: string
  issues: Array<{ path: string; message: string }> | undefined
  retryAfterMs: number | undefined
  /** The `tokend:*` scopes a 403 lacks, when that is why (REST problems and the challenge carry it). */
  missingScopes: readonly string[] | undefined
}

export function describeError(error: TRPCError): ErrorDescription {
  const cause = error.cause
  const reason = cause instanceof DomainError ? cause.reason : (REASON_OF[error.code] ?? 'internal')
  const issues =
    cause instanceof ZodError
      ? cause.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }))
      : cause instanceof InvalidInputError && cause.field
        ? [{ path: cause.field, message: cause.message }]
        : undefined
  // Internal errors say nothing about their cause to the caller; the log has it.
  const message =
    issues && cause instanceof ZodError
      ? `invalid input: ${issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ')}`
      : reason === 'internal'
        ? 'internal error'
        : error.message
  const retryAfterMs = cause instanceof RateLimitedError ? cause.retryAfterMs : undefined
  const missingScopes = missingScopesOf(cause)
  return { reason, message, issues, retryAfterMs, missingScopes }
}

const t = initTRPC
  .context<Context>()
  .meta<Meta>()
  .create({
    // Never put stack traces on the wire, whatever NODE_ENV says.
    isDev: false,
    // Subscriptions (the change stream) ping every second; clients reconnect after 3 s of silence.
    sse: { ping: { enabled: true, intervalMs: 1_000 }, client: { reconnectAfterInactivityMs: 3_000 } },
    errorFormatter({ shape, error }) {
      const { reason, message, issues, retryAfterMs } = describeError(error)
      return {
        ...shape,
        message,
        data: {
          code: shape.data.code,
          httpStatus: shape.data.httpStatus,
          path: shape.data.path,
          reason,
          issues,
          retryAfterMs,
        },
      }
    },
  })

/** The one place domain errors become tRPC errors (status and reason), keeping the cause. */
export function toTRPCError(cause: unknown): TRPCError {
  if (cause instanceof TRPCError && !(cause.cause instanceof DomainError) && !isDatabaseUnavailable(cause.cause)) {
    return cause
  }
  const inner = cause instanceof TRPCError ? cause.cause : cause
  if (inner instanceof DomainError) {
    return new TRPCError({ code: CODE_OF[inner.reason], message: inner.message, cause: inner })
  }
  if (isDatabaseUnavailable(inner)) {
    const unavailable = new UnavailableError(inner)
    return new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: unavailable.message, cause: unavailable })
  }
  return getTRPCErrorFromUnknown(cause)
}

/** The scopes a refusal names: a procedure's `tokend:*` scope, or those an exchange asked beyond its key's. */
function missingScopesOf(cause: unknown): readonly string[] | undefined {
  if (cause instanceof ForbiddenError || cause instanceof InsufficientScopeError) return cause.missingScopes
  return undefined
}

/** The headers an error answer carries on every transport: RFC 6750's challenge, Retry-After. */
export function errorHeaders(errors: readonly TRPCError[]): Record<string, string> {
  const headers: Record<string, string> = {}
  if (errors.some((error) => error.code === 'UNAUTHORIZED')) headers['www-authenticate'] = 'Bearer realm="tokend"'
  else if (errors.some((error) => error.code === 'FORBIDDEN')) {
    // The credential is valid but does not reach this: RFC 6750's insufficient_scope.
    const scopes = errors.flatMap((error) => missingScopesOf(error.cause) ?? [])
    headers['www-authenticate'] = challenge(REALM, 'insufficient_scope', 'the credential may not do this', [
      ...new Set(scopes),
    ])
  }
  const waits = errors.flatMap((error) => (error.cause instanceof RateLimitedError ? [error.cause.retryAfterMs] : []))
  if (waits.length > 0) headers['retry-after'] = String(Math.ceil(Math.max(...waits) / 1000))
  return headers
}

/** An error as tRPC writes it on the wire (`error` of an envelope), for answers written outside its adapter. */
export function errorShape(
  error: TRPCError,
  path: string,
  type: 'mutation' | 'query' | 'subscription',
  input: unknown,
) {
  return getTRPCErrorShape({ config: t._config, error, input, ctx: undefined, path, type })
}

const mapErrors = t.middleware(async ({ next }) => {
  const result = await next()
  if (result.ok) return result
  const mapped = toTRPCError(result.error)
  if (mapped === result.error) return result
  throw mapped
})

/** Postgres cannot store NUL in text: no input holding one reaches a procedure. */
const rejectNul = t.middleware(async ({ getRawInput, next }) => {
  const path = nulPath(await getRawInput())
  if (path !== null) throw new InvalidInputError('text must not contain NUL characters (\\u0000)', path)
  return next()
})

export const router = t.router
export const createCallerFactory = t.createCallerFactory
export const publicProcedure = t.procedure.use(mapErrors).use(rejectNul)

/** Any valid access key. */
export const authedProcedure = publicProcedure.use(async ({ ctx, next }) => {
  const principal = await ctx.authenticate()
  if (!principal) throw new UnauthenticatedError()
  return next({ ctx: { principal } })
})
