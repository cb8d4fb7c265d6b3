import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server'
import { accountRouter } from './accounts/account.router.ts'
import { auditRouter } from './audit/audit.router.ts'
import { tokenRouter } from './tokens/token.router.ts'
import { authedProcedure, router } from './trpc.ts'

export const appRouter = router({
  token: tokenRouter,
  account: accountRouter,
  audit: auditRouter,
  me: authedProcedure.query(({ ctx }) => ctx.principal),
})

export type AppRouter = typeof appRouter
export type RouterInputs = inferRouterInputs<AppRouter>
export type RouterOutputs = inferRouterOutputs<AppRouter>
