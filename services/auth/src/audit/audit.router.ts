import { z } from 'zod'
import { authedProcedure } from '../trpc.ts'
import { cursor, id, limit, page, timestamp } from '../validation.ts'
import { listAudit } from './audit.service.ts'

const auditEvent = z
  .object({
    id: z.string(),
    accountId: z.string().nullable(),
    actorType: z.string(),
    actorId: z.string().nullable(),
    actorName: z.string().nullable().meta({ description: "the actor's username or key name" }),
    action: z.string(),
    targetType: z.string().nullable(),
    targetId: z.string().nullable(),
    address: z.string().nullable(),
    userAgent: z.string().nullable(),
    requestId: z.string().nullable(),
    data: z.record(z.string(), z.unknown()),
    createdAt: timestamp,
  })
  .meta({ id: 'AuditEvent' })

export const auditRouter = {
  list: authedProcedure
    .meta({
      openapi: { method: 'GET', path: '/audit', tags: ['audit'], summary: 'List audit events, newest first (admin)' },
    })
    .input(
      z
        .strictObject({
          accountId: id.optional(),
          actorId: id.optional(),
          targetId: id.optional(),
          action: z.string().min(1).max(64).optional(),
          since: z.iso.datetime({ offset: true }).optional(),
          until: z.iso.datetime({ offset: true }).optional(),
          limit,
          cursor: cursor.optional(),
        })
        .default({ limit: 50 }),
    )
    .output(page(auditEvent))
    .query(({ ctx, input }) => listAudit(ctx.deps, ctx.principal, input)),
}
