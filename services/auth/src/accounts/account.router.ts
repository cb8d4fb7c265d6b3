import { z } from 'zod'
import { actorOf } from '../principal.ts'
import { authedProcedure } from '../trpc.ts'
import { cursor, id, limit } from '../validation.ts'
import { createAccount, listAccounts, setAccountPlan, setAccountStatus } from './account.service.ts'

export const accountRouter = {
  create: authedProcedure
    .input(
      z.strictObject({ name: z.string().trim().min(1).max(100), plan: z.enum(['trial', 'paid']).default('trial') }),
    )
    .mutation(({ ctx, input }) => createAccount(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta), input)),

  setStatus: authedProcedure
    .input(z.strictObject({ accountId: id, status: z.enum(['active', 'suspended']) }))
    .mutation(({ ctx, input }) => setAccountStatus(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta), input)),

  setPlan: authedProcedure
    .input(z.strictObject({ accountId: id, plan: z.enum(['trial', 'paid']) }))
    .mutation(({ ctx, input }) => setAccountPlan(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta), input)),

  list: authedProcedure
    .input(z.strictObject({ limit, cursor: cursor.optional() }).default({ limit: 50 }))
    .query(({ ctx, input }) => listAccounts(ctx.deps, ctx.principal, input)),
}
