import { z } from 'zod'
import { actorOf } from '../principal.ts'
import { authedProcedure } from '../trpc.ts'
import { cursor, email, id, limit, newPassword, role, username } from '../validation.ts'
import { createUser, listUsers, removeUser, setUserRole } from './user.service.ts'

const userProcedure = authedProcedure.use(({ ctx, next }) =>
  next({ ctx: { users: { deps: ctx.deps, principal: ctx.principal, actor: actorOf(ctx.principal, ctx.meta) } } }),
)

export const userRouter = {
  create: userProcedure
    .input(
      z
        .strictObject({
          username,
          email,
          password: newPassword,
          role: role.default('manager'),
          accountId: id.optional(),
        })
        .refine((input) => !samePassword(input.password, [input.username, input.email]), {
          message: 'the password must not be the username or the email',
          path: ['password'],
        }),
    )
    .mutation(({ ctx, input }) => createUser(ctx.users, input)),

  list: userProcedure
    .input(z.strictObject({ limit, cursor: cursor.optional(), accountId: id.optional() }).default({ limit: 50 }))
    .query(({ ctx, input }) => listUsers(ctx.users, input)),

  setRole: userProcedure
    .input(z.strictObject({ id, role }))
    .mutation(({ ctx, input }) => setUserRole(ctx.users, input)),

  remove: userProcedure.input(z.strictObject({ id })).mutation(({ ctx, input }) => removeUser(ctx.users, input.id)),
}

export function samePassword(password: string, others: string[]): boolean {
  const folded = password.trim().toLowerCase()
  return others.some((other) => other.toLowerCase() === folded)
}
