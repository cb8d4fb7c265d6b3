import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server'
import { accountRouter } from './accounts/account.router.ts'
import { auditRouter } from './audit/audit.router.ts'
import { directRouter } from './directs/direct.router.ts'
import { authRouter, signingKeyRouter } from './sessions/auth.router.ts'
import { tokenRouter } from './tokens/token.router.ts'
import { authedProcedure, router } from './trpc.ts'
import { userRouter } from './users/user.router.ts'

export const appRouter = router({
  token: tokenRouter,
  account: accountRouter,
  audit: auditRouter,
  auth: authRouter,
  user: userRouter,
  direct: directRouter,
  signingKey: signingKeyRouter,
  me: authedProcedure.query(({ ctx }) => ctx.principal),
})

export type AppRouter = typeof appRouter
export type RouterInputs = inferRouterInputs<AppRouter>
export type RouterOutputs = inferRouterOutputs<AppRouter>
