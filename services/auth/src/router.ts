import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server'
import { z } from 'zod'
import { accountRouter } from './accounts/account.router.ts'
import { auditRouter } from './audit/audit.router.ts'
import { directRouter } from './directs/direct.router.ts'
import { authRouter, signingKeyRouter } from './sessions/auth.router.ts'
import { tokenRouter } from './tokens/token.router.ts'
import { authedProcedure, router } from './trpc.ts'
import { userRouter } from './users/user.router.ts'
import { environment, role, timestamp } from './validation.ts'

/** The authenticated caller: an access key, or a person's session. */
const principal = z
  .discriminatedUnion('kind', [
    z.object({
      kind: z.literal('access_key'),
      tokenId: z.string(),
      accountId: z.string(),
      operator: z.boolean(),
      environment,
      role,
      scopes: z.array(z.string()).readonly(),
      name: z.string(),
      expiresAt: timestamp.nullable(),
    }),
    z.object({
      kind: z.literal('session'),
      sessionId: z.string(),
      userId: z.string(),
      username: z.string(),
      accountId: z.string(),
      operator: z.boolean(),
      role,
      scopes: z.array(z.string()).readonly(),
      expiresAt: timestamp,
    }),
  ])
  .meta({ id: 'Principal' })

export const appRouter = router({
  token: tokenRouter,
  account: accountRouter,
  audit: auditRouter,
  auth: authRouter,
  user: userRouter,
  direct: directRouter,
  signingKey: signingKeyRouter,
  me: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/me', tags: ['me'], summary: 'The caller: its key or session' } })
    .output(principal)
    .query(({ ctx }) => ctx.principal),
})

export type AppRouter = typeof appRouter
export type RouterInputs = inferRouterInputs<AppRouter>
export type RouterOutputs = inferRouterOutputs<AppRouter>
