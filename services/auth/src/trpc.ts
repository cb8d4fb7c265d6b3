import { initTRPC, TRPCError } from '@trpc/server'

type TRPC_ERROR_CODE_KEY = TRPCError['code']

import type { OpenApiMeta } from 'trpc-to-openapi'
import { ZodError, type ZodType } from 'zod'
import type { Context } from './context.ts'
import { isDatabaseUnavailable } from './db/errors.ts'
import {
  DomainError,
  InvalidInputError,
  RateLimitedError,
  type Reason,
  UnauthenticatedError,
  UnavailableError,
} from './errors.ts'

export const CODE_OF: Record<Reason, TRPC_ERROR_CODE_KEY> = {
  invalid_input: 'BAD_REQUEST',
  invalid_token: 'UNAUTHORIZED',
  invalid_credentials: 'UNAUTHORIZED',
  forbidden: 'FORBIDDEN',
  plan_required: 'FORBIDDEN',
  not_found: 'NOT_FOUND',
  token_revoked: 'CONFLICT',
  token_limit_reached: 'CONFLICT',
  username_taken: 'CONFLICT',
  conflict: 'CONFLICT',
  rate_limited: 'TOO_MANY_REQUESTS',
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
  return { reason, message, issues, retryAfterMs }
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
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next()
  if (result.ok) return result
  const cause = result.error.cause
  if (cause instanceof DomainError) {
    throw new TRPCError({ code: CODE_OF[cause.reason], message: cause.message, cause })
  }
  if (isDatabaseUnavailable(cause)) {
    const unavailable = new UnavailableError(cause)
    throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: unavailable.message, cause: unavailable })
  }
  return result
})

export const router = t.router
export const createCallerFactory = t.createCallerFactory
export const publicProcedure = t.procedure.use(mapErrors)

/** Any valid access key. */
export const authedProcedure = publicProcedure.use(async ({ ctx, next }) => {
  const principal = await ctx.authenticate()
  if (!principal) throw new UnauthenticatedError()
  return next({ ctx: { principal } })
})
