import { z } from 'zod'
import { changeStream } from '../changes/change-stream.ts'
import type { Deps } from '../deps.ts'
import { ForbiddenError, UnavailableError } from '../errors.ts'
import { actorOf, type Principal } from '../principal.ts'
import { authedProcedure } from '../trpc.ts'
import { cursor, environment, futureDate, id, limit, role, scope, scopes } from '../validation.ts'
import { reportLeaked } from './leaks.ts'
import { getToken, issueToken, listTokens, revokeToken, rotateToken, setTokenDisabled } from './token.service.ts'
import { type VerifyResult, verifyToken } from './verify.ts'

const tokenProcedure = authedProcedure.use(({ ctx, next }) =>
  next({ ctx: { tokens: { deps: ctx.deps, principal: ctx.principal, actor: actorOf(ctx.principal, ctx.meta) } } }),
)

function requireVerifier(scopes: readonly string[]): void {
  if (!scopes.includes('tokend:verify')) throw new ForbiddenError('this needs the tokend:verify scope')
}

export const verifyInput = z.strictObject({
  // Anything up to this length is judged (MALFORMED at worst); beyond it is not a key at all.
  token: z.string().max(4096),
  require: z
    .strictObject({
      scopes: z.array(scope).max(50).optional(),
      environment: environment.optional(),
      role: role.optional(),
    })
    .optional(),
  /** A request limit to apply to the key's account, e.g. 60 per minute per endpoint. */
  ratelimit: z
    .strictObject({
      name: z.string().min(1).max(100),
      limit: z.number().int().min(1).max(1_000_000_000),
      windowMs: z.number().int().min(1_000).max(86_400_000),
    })
    .optional(),
})

/** token.verify's resolver, which the HTTP fast path calls as well (http/fast-verify.ts). */
export async function answerVerify(
  deps: Deps,
  caller: Principal,
  input: z.infer<typeof verifyInput>,
): Promise<VerifyResult> {
  requireVerifier(caller.scopes)
  const started = performance.now()
  const result = await verifyToken(deps, input.token, input.require, input.ratelimit)
  deps.metrics.verified(result, (performance.now() - started) / 1000)
  return result
}

export const tokenRouter = {
  verify: authedProcedure.input(verifyInput).mutation(({ ctx, input }) => answerVerify(ctx.deps, ctx.principal, input)),

  /**
   * Change events for client-side caches (SSE). Opens with `ready`; fails with 503
   * when this replica's own channel is down, so a client never trusts a silent stream.
   */
  changes: authedProcedure.subscription(async function* ({ ctx, signal }) {
    requireVerifier(ctx.principal.scopes)
    try {
      yield* changeStream(ctx.deps.changes, signal)
    } catch (error) {
      throw new UnavailableError(error, 'this replica cannot vouch for its change events now; flush and reconnect')
    }
  }),

  issue: tokenProcedure
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
        })
        .refine((input) => input.expiresIn === undefined || input.expiresAt === undefined, {
          message: 'give expiresIn or expiresAt, not both',
          path: ['expiresAt'],
        }),
    )
    .mutation(({ ctx, input }) => issueToken(ctx.tokens, input)),

  list: tokenProcedure
    .input(
      z
        .strictObject({
          environment: environment.optional(),
          status: z.enum(['active', 'disabled', 'revoked', 'expired', 'all']).default('all'),
          limit,
          cursor: cursor.optional(),
          accountId: id.optional(),
        })
        .default({ status: 'all', limit: 50 }),
    )
    .query(({ ctx, input }) => listTokens(ctx.tokens, input)),

  get: tokenProcedure.input(z.strictObject({ id })).query(({ ctx, input }) => getToken(ctx.tokens, input.id)),

  revoke: tokenProcedure.input(z.strictObject({ id })).mutation(({ ctx, input }) => revokeToken(ctx.tokens, input.id)),

  setDisabled: tokenProcedure
    .input(z.strictObject({ id, disabled: z.boolean() }))
    .mutation(({ ctx, input }) => setTokenDisabled(ctx.tokens, input.id, input.disabled)),

  rotate: tokenProcedure
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
    .mutation(({ ctx, input }) => rotateToken(ctx.tokens, input)),

  /** Leak response (SPEC §9): for the operator account and secret scanners (`tokend:scanner`). */
  reportLeaked: authedProcedure
    .input(z.strictObject({ tokens: z.array(z.string().max(4096)).min(1).max(1_000) }))
    .mutation(({ ctx, input }) =>
      reportLeaked(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta), input.tokens),
    ),
}
