import { z } from 'zod'
import { changeStream } from '../changes/change-stream.ts'
import { creditsInput, creditsOutput } from '../credits/credits.ts'
import { DomainError, UnavailableError } from '../errors.ts'
import type { MaybePromise } from '../maybe-promise.ts'
import { actorOf } from '../principal.ts'
import { authedProcedure } from '../trpc.ts'
import { cursor, days, environment, futureDate, id, limit, page, role, scopes, timestamp } from '../validation.ts'
import { exchangeInput, exchangeToken } from './derived.ts'
import { allowedCidrs, meta } from './key-controls.ts'
import { reportLeaked } from './leaks.ts'
import {
  getToken,
  issueToken,
  listTokens,
  revokeToken,
  rotateToken,
  setTokenDisabled,
  updateToken,
} from './token.service.ts'
import { answerVerify, verifyInput } from './verify.ts'

const tokenProcedure = authedProcedure.use(({ ctx, next }) =>
  next({ ctx: { tokens: { deps: ctx.deps, principal: ctx.principal, actor: actorOf(ctx.principal, ctx.meta) } } }),
)

// Output schemas list the fields in the order the services build them: tRPC answers
// with the parsed value, so the order on the wire stays what it was.
export const tokenInfo = z
  .object({
    id: z.string(),
    accountId: z.string(),
    start: z.string().meta({ description: 'prefix, environment and the first 4 secret characters' }),
    name: z.string(),
    detail: z.string().nullable(),
    environment,
    role,
    scopes: z.array(z.string()),
    status: z.enum(['active', 'disabled', 'expired', 'revoked']),
    createdAt: timestamp,
    expiresAt: timestamp.nullable(),
    lastUsedAt: timestamp.nullable(),
    revokedAt: timestamp.nullable(),
    disabled: z.boolean(),
    rotatedFrom: z.string().nullable(),
    meta: z.record(z.string(), z.unknown()).nullable(),
    allowedCidrs: z.array(z.string()).meta({ description: 'networks the key may be used from; empty: anywhere' }),
    credits: creditsOutput.unwrap().optional().meta({
      description: 'Present for a key with usage credits; `remaining` excludes blocks replicas hold on lease',
    }),
  })
  .meta({ id: 'TokenInfo', description: 'An access key as listings show it: never the secret or its digest.' })

export const issuedToken = z
  .object({
    token: z.string().meta({ description: 'the plaintext key, returned once and never again' }),
    id: z.string(),
    accountId: z.string(),
    start: z.string(),
    name: z.string(),
    detail: z.string().nullable(),
    environment,
    role,
    scopes: z.array(z.string()),
    expiresAt: timestamp.nullable(),
    createdAt: timestamp,
    rotatedFrom: z.string().nullable(),
    meta: z.record(z.string(), z.unknown()).nullable(),
    allowedCidrs: z.array(z.string()),
    credits: creditsOutput.unwrap().optional().meta({ description: 'Present for a key with usage credits' }),
  })
  .meta({ id: 'IssuedToken' })

const granted = {
  valid: z.literal(true),
  tokenId: z.string(),
  accountId: z.string(),
  environment,
  scopes: z.array(z.string()),
  name: z.string(),
}

/** Documents `VerifyResult`; not run on the hot path (see `documentedOutput` in trpc.ts). */
export const verifyResult = z
  .discriminatedUnion('valid', [
    z.discriminatedUnion('kind', [
      z.object({
        ...granted,
        kind: z.literal('access_key'),
        role,
        expiresAt: timestamp.nullable(),
        meta: z.record(z.string(), z.unknown()).readonly().optional(),
        allowedCidrs: z.array(z.string()).readonly().optional(),
        remaining: z.number().int().optional().meta({ description: 'Usage credits left; keys with credits only' }),
      }),
      z.object({ ...granted, kind: z.literal('session'), userId: z.string(), role, expiresAt: timestamp }),
      z.object({
        ...granted,
        kind: z.literal('direct'),
        role: z.null(),
        expiresAt: timestamp,
        resource: z.object({ type: z.string(), id: z.string() }),
      }),
      z.object({
        ...granted,
        tokenId: z.string().meta({ description: "the parent access key's id" }),
        kind: z.literal('derived'),
        role,
        expiresAt: timestamp,
        audience: z.string(),
        meta: z.record(z.string(), z.unknown()).readonly().optional(),
        allowedCidrs: z.array(z.string()).readonly().optional(),
      }),
    ]),
    z.object({
      valid: z.literal(false),
      reason: z.enum([
        'MALFORMED',
        'NOT_FOUND',
        'EXPIRED',
        'REVOKED',
        'DISABLED',
        'ACCOUNT_SUSPENDED',
        'INSUFFICIENT_SCOPE',
        'WRONG_ENVIRONMENT',
        'WRONG_AUDIENCE',
        'RATE_LIMITED',
        'IP_NOT_ALLOWED',
        'USAGE_EXCEEDED',
      ]),
      missingScopes: z.array(z.string()).optional(),
      retryAfterMs: z.number().int().optional(),
      remaining: z.number().int().optional(),
    }),
  ])
  .meta({ id: 'VerifyResult', description: 'A denial is a result (HTTP 200), not an error.' })

export const tokenRouter = {
  verify: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/tokens/verify',
        tags: ['tokens'],
        summary: 'Verify a credential (access key, session or direct JWT); needs tokend:verify',
      },
      documentedOutput: verifyResult,
    })
    .input(verifyInput)
    // The documented schema must cover what verify returns: the typecheck proves it.
    .mutation(
      ({ ctx, input }): MaybePromise<z.output<typeof verifyResult>> => answerVerify(ctx.deps, ctx.principal, input),
    ),

  /**
   * Exchanges the calling access key for a derived token (SPEC §14): an EdDSA JWT for one
   * audience, living at most 15 minutes, holding a subset of the key's scopes. Verified
   * offline by `@tokend/client` from /.well-known/jwks.json, or by token.verify.
   */
  exchange: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/tokens/exchange',
        tags: ['tokens'],
        summary: 'Exchange the calling access key for a short-lived, audience-bound derived token (JWT)',
      },
    })
    .input(exchangeInput)
    .output(
      z
        .object({
          token: z.string().meta({ description: 'the derived token: an EdDSA JWT, typ tokend-derived+jwt' }),
          tokenType: z.literal('Bearer'),
          parent: z.string().meta({ description: 'the id of the access key it was exchanged for' }),
          audience: z.string(),
          scopes: z.array(z.string()),
          expiresAt: timestamp,
        })
        .meta({ id: 'DerivedToken' }),
    )
    .mutation(({ ctx, input }) => exchangeToken(ctx.deps, ctx.principal, input)),

  /**
   * Change events for client-side caches and the console (SSE; see change-stream.ts for
   * who hears what). Opens with `ready`; fails with 503 when this replica's own channel
   * is down, so a client never trusts a silent stream, and with 401 when the
   * subscriber's own credential stops being valid. Callers who may not subscribe are
   * refused with 401/403 before the stream starts (`refuseStream` in app.ts).
   */
  changes: authedProcedure.subscription(async function* ({ ctx, signal }) {
    try {
      yield* changeStream(ctx.deps.changes, { principal: ctx.principal, recheck: ctx.recheck }, signal)
    } catch (error) {
      if (error instanceof DomainError) throw error
      throw new UnavailableError(error, 'this replica cannot vouch for its change events now; flush and reconnect')
    }
  }),

  issue: tokenProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/tokens',
        tags: ['tokens'],
        summary: 'Issue an access key (admin); the plaintext is returned once',
        errorResponses: [409, 429],
      },
    })
    .input(
      z
        .strictObject({
          name: z.string().trim().min(1).max(100),
          detail: z.string().max(500).optional(),
          environment,
          role: role.optional(),
          scopes: scopes.optional(),
          expiresIn: z.enum(['30d', '90d', '1y', 'never']).optional(),
          expiresAt: futureDate.optional(),
          accountId: id.optional(),
          meta: meta.optional(),
          allowedCidrs: allowedCidrs.optional(),
          credits: creditsInput.optional(),
        })
        .refine((input) => input.expiresIn === undefined || input.expiresAt === undefined, {
          message: 'give expiresIn or expiresAt, not both',
          path: ['expiresAt'],
        }),
    )
    .output(issuedToken)
    .mutation(({ ctx, input }) => issueToken(ctx.tokens, input)),

  list: tokenProcedure
    .meta({ openapi: { method: 'GET', path: '/tokens', tags: ['tokens'], summary: "List the account's access keys" } })
    .input(
      z
        .strictObject({
          environment: environment.optional(),
          status: z.enum(['active', 'disabled', 'revoked', 'expired', 'all']).default('all'),
          expiringWithin: days.optional().meta({
            description: 'only keys not yet expired that expire within this many days',
          }),
          unusedFor: days.optional().meta({
            description: 'only keys unused for at least this many days (never used: created that long ago)',
          }),
          limit,
          cursor: cursor.optional(),
          accountId: id.optional(),
        })
        .default({ status: 'all', limit: 50 }),
    )
    .output(page(tokenInfo))
    .query(({ ctx, input }) => listTokens(ctx.tokens, input)),

  get: tokenProcedure
    .meta({ openapi: { method: 'GET', path: '/tokens/{id}', tags: ['tokens'], summary: 'Get an access key' } })
    .input(z.strictObject({ id }))
    .output(tokenInfo)
    .query(({ ctx, input }) => getToken(ctx.tokens, input.id)),

  update: tokenProcedure
    .meta({
      openapi: {
        method: 'PATCH',
        path: '/tokens/{id}',
        tags: ['tokens'],
        summary:
          'Change an access key: name, detail, scopes, meta, allowedCidrs, credits, or an expiry that only moves closer (admin)',
        errorResponses: [409],
      },
    })
    .input(
      z
        .strictObject({
          id,
          name: z.string().trim().min(1).max(100).optional(),
          detail: z.string().max(500).nullable().optional(),
          scopes: scopes.optional(),
          meta: meta.nullable().optional(),
          allowedCidrs: allowedCidrs.optional(),
          expiresAt: futureDate.optional(),
          credits: creditsInput.nullable().optional(),
        })
        .refine((input) => Object.keys(input).some((field) => field !== 'id'), {
          message: 'give at least one field to change',
        }),
    )
    .output(tokenInfo)
    .mutation(({ ctx, input }) => updateToken(ctx.tokens, input)),

  revoke: tokenProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/tokens/{id}/revoke',
        tags: ['tokens'],
        summary: 'Revoke an access key for good; repeating it returns the same revokedAt',
      },
    })
    .input(z.strictObject({ id }))
    .output(z.object({ id: z.string(), revokedAt: timestamp }))
    .mutation(({ ctx, input }) => revokeToken(ctx.tokens, input.id)),

  setDisabled: tokenProcedure
    .meta({
      openapi: {
        method: 'PUT',
        path: '/tokens/{id}/disabled',
        tags: ['tokens'],
        summary: 'Disable or re-enable an access key (reversible, unlike revoke)',
        errorResponses: [409],
      },
    })
    .input(z.strictObject({ id, disabled: z.boolean() }))
    .output(tokenInfo)
    .mutation(({ ctx, input }) => setTokenDisabled(ctx.tokens, input.id, input.disabled)),

  rotate: tokenProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/tokens/{id}/rotate',
        tags: ['tokens'],
        summary: 'Issue a successor key; the old one keeps working unless oldExpiresIn shortens it',
        errorResponses: [409, 429],
      },
    })
    .input(
      z.strictObject({
        id,
        oldExpiresIn: z
          .number()
          .int()
          .min(0)
          .max(365 * 86_400)
          .optional(),
      }),
    )
    .output(issuedToken)
    .mutation(({ ctx, input }) => rotateToken(ctx.tokens, input)),

  /** Leak response (SPEC §9): for the operator account and secret scanners (`tokend:scanner`). */
  reportLeaked: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/tokens/leaked',
        tags: ['tokens'],
        summary: 'Report leaked keys: the valid ones are revoked (operator or tokend:scanner)',
      },
    })
    .input(z.strictObject({ tokens: z.array(z.string().max(4096)).min(1).max(1_000) }))
    .output(
      z.object({
        revoked: z.number().int(),
        results: z.array(
          z.object({
            index: z.number().int(),
            status: z.enum(['revoked', 'already_revoked', 'malformed', 'unknown']),
            tokenId: z.string().optional(),
            accountId: z.string().optional(),
          }),
        ),
      }),
    )
    .mutation(({ ctx, input }) =>
      reportLeaked(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta), input.tokens),
    ),
}
