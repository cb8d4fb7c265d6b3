import { z } from 'zod'
import { actorOf } from '../principal.ts'
import { authedProcedure } from '../trpc.ts'
import { cursor, id, limit, page, timestamp } from '../validation.ts'
import { createAccount, getAccount, listAccounts, setAccountPlan, setAccountStatus } from './account.service.ts'

export const accountInfo = z
  .object({
    id: z.string(),
    name: z.string(),
    plan: z.enum(['trial', 'paid']),
    status: z.enum(['active', 'suspended']),
    operator: z.boolean(),
    createdAt: timestamp,
  })
  .meta({ id: 'AccountInfo' })

export const accountRouter = {
  create: authedProcedure
    .meta({
      openapi: { method: 'POST', path: '/accounts', tags: ['accounts'], summary: 'Create an account (operator admin)' },
    })
    .input(
      z.strictObject({ name: z.string().trim().min(1).max(100), plan: z.enum(['trial', 'paid']).default('trial') }),
    )
    .output(accountInfo)
    .mutation(({ ctx, input }) => createAccount(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta), input)),

  setStatus: authedProcedure
    .meta({
      openapi: {
        method: 'PUT',
        path: '/accounts/{accountId}/status',
        tags: ['accounts'],
        summary: 'Suspend or reactivate an account: suspension rejects all of its keys at once (operator admin)',
      },
    })
    .input(z.strictObject({ accountId: id, status: z.enum(['active', 'suspended']) }))
    .output(accountInfo)
    .mutation(({ ctx, input }) => setAccountStatus(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta), input)),

  setPlan: authedProcedure
    .meta({
      openapi: {
        method: 'PUT',
        path: '/accounts/{accountId}/plan',
        tags: ['accounts'],
        summary: 'Move an account between plans (operator admin)',
        errorResponses: [409],
      },
    })
    .input(z.strictObject({ accountId: id, plan: z.enum(['trial', 'paid']) }))
    .output(accountInfo)
    .mutation(({ ctx, input }) => setAccountPlan(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta), input)),

  get: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/account',
        tags: ['accounts'],
        summary: "The caller's account (or, for the operator, any) with its limits in use",
      },
    })
    .input(z.strictObject({ accountId: id.optional() }).default({}))
    .output(
      accountInfo
        .extend({
          limits: z.object({
            activeKeys: z.number().int(),
            maxActiveKeys: z.number().int(),
            creationsInWindow: z.number().int(),
            maxCreationsPerWindow: z.number().int(),
            creationWindowMs: z.number().int(),
          }),
        })
        .meta({ id: 'AccountUsage' }),
    )
    .query(({ ctx, input }) => getAccount(ctx.deps, ctx.principal, input)),

  list: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/accounts', tags: ['accounts'], summary: 'List accounts (operator)' } })
    .input(z.strictObject({ limit, cursor: cursor.optional() }).default({ limit: 50 }))
    .output(page(accountInfo))
    .query(({ ctx, input }) => listAccounts(ctx.deps, ctx.principal, input)),
}
