import { z } from 'zod'
import { actorOf } from '../principal.ts'
import { authedProcedure } from '../trpc.ts'
import { cursor, environment, id, limit, page, timestamp } from '../validation.ts'
import { createDirect, deleteDirect, listDirects } from './direct.service.ts'

const directProcedure = authedProcedure.use(({ ctx, next }) =>
  next({ ctx: { directs: { deps: ctx.deps, principal: ctx.principal, actor: actorOf(ctx.principal, ctx.meta) } } }),
)

// No `:` in either: they are parts of the topic `customer_id:<account>:<type>:<id>`.
const resourceType = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'resource types look like "ai" or "call_flow"')
const resourceId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'resource ids are up to 128 letters, digits and _ . -')

const directInfo = z
  .object({
    id: z.string(),
    accountId: z.string(),
    start: z.string().meta({ description: 'the non-secret first characters of the hash' }),
    resourceType: z.string(),
    resourceId: z.string(),
    environment,
    createdBy: z.string().nullable(),
    createdAt: timestamp,
  })
  .meta({ id: 'DirectInfo', description: 'A direct link as listings show it: never the hash or its digest.' })

export const directRouter = {
  create: directProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/directs',
        tags: ['directs'],
        summary: 'Create a direct link to one resource (admin); the hash is returned once',
      },
    })
    .input(z.strictObject({ resourceType, resourceId, environment: environment.optional(), accountId: id.optional() }))
    .output(directInfo.extend({ hash: z.string() }).meta({ id: 'CreatedDirect' }))
    .mutation(({ ctx, input }) => createDirect(ctx.directs, input)),

  list: directProcedure
    .meta({
      openapi: { method: 'GET', path: '/directs', tags: ['directs'], summary: "List the account's direct links" },
    })
    .input(z.strictObject({ limit, cursor: cursor.optional(), accountId: id.optional() }).default({ limit: 50 }))
    .output(page(directInfo))
    .query(({ ctx, input }) => listDirects(ctx.directs, input)),

  delete: directProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/directs/{id}',
        tags: ['directs'],
        summary: 'Delete a direct link: its hash and the tokens booted from it stop working (admin)',
      },
    })
    .input(z.strictObject({ id }))
    .output(z.object({ id: z.string(), deletedAt: timestamp }))
    .mutation(({ ctx, input }) => deleteDirect(ctx.directs, input.id)),
}
