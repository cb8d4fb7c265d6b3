import { z } from 'zod'
import { actorOf } from '../principal.ts'
import { authedProcedure } from '../trpc.ts'
import { cursor, environment, id, limit } from '../validation.ts'
import { createDirect, deleteDirect, listDirects } from './direct.service.ts'

const directProcedure = authedProcedure.use(({ ctx, next }) =>
  next({ ctx: { directs: { deps: ctx.deps, principal: ctx.principal, actor: actorOf(ctx.principal, ctx.meta) } } }),
)

// No `:` in either: they are parts of the topic `customer_id:<account>:<type>:<id>`.
const resourceType = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'resource types look like "ai" or "call_flow"')
const resourceId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'resource ids are up to 128 letters, digits and _ . -')

export const directRouter = {
  create: directProcedure
    .input(z.strictObject({ resourceType, resourceId, environment: environment.optional(), accountId: id.optional() }))
    .mutation(({ ctx, input }) => createDirect(ctx.directs, input)),

  list: directProcedure
    .input(z.strictObject({ limit, cursor: cursor.optional(), accountId: id.optional() }).default({ limit: 50 }))
    .query(({ ctx, input }) => listDirects(ctx.directs, input)),

  delete: directProcedure
    .input(z.strictObject({ id }))
    .mutation(({ ctx, input }) => deleteDirect(ctx.directs, input.id)),
}
