import { z } from 'zod'
import { authedProcedure } from '../trpc.ts'
import { cursor, id, limit } from '../validation.ts'
import { listAudit } from './audit.service.ts'

export const auditRouter = {
  list: authedProcedure
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
    .query(({ ctx, input }) => listAudit(ctx.deps, ctx.principal, input)),
}
