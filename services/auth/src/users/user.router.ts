import { z } from 'zod'
import { actorOf } from '../principal.ts'
import { authedProcedure } from '../trpc.ts'
import { cursor, email, id, limit, newPassword, page, role, timestamp, username } from '../validation.ts'
import { createUser, listUsers, removeUser, setUserRole } from './user.service.ts'

const userProcedure = authedProcedure.use(({ ctx, next }) =>
  next({ ctx: { users: { deps: ctx.deps, principal: ctx.principal, actor: actorOf(ctx.principal, ctx.meta) } } }),
)

export const userInfo = z
  .object({
    id: z.string(),
    accountId: z.string(),
    username: z.string(),
    email: z.string(),
    role,
    createdAt: timestamp,
  })
  .meta({ id: 'UserInfo', description: 'A user as listings show it: never the password hash.' })

export const userRouter = {
  create: userProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/users',
        tags: ['users'],
        summary: 'Create a user (admin)',
        errorResponses: [409],
      },
    })
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
    .output(userInfo)
    .mutation(({ ctx, input }) => createUser(ctx.users, input)),

  list: userProcedure
    .meta({ openapi: { method: 'GET', path: '/users', tags: ['users'], summary: "List the account's users" } })
    .input(z.strictObject({ limit, cursor: cursor.optional(), accountId: id.optional() }).default({ limit: 50 }))
    .output(page(userInfo))
    .query(({ ctx, input }) => listUsers(ctx.users, input)),

  setRole: userProcedure
    .meta({
      openapi: {
        method: 'PUT',
        path: '/users/{id}/role',
        tags: ['users'],
        summary: "Change a user's role (admin)",
        errorResponses: [409],
      },
    })
    .input(z.strictObject({ id, role }))
    .output(userInfo)
    .mutation(({ ctx, input }) => setUserRole(ctx.users, input)),

  remove: userProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/users/{id}',
        tags: ['users'],
        summary: 'Remove a user and end their sessions (admin)',
        errorResponses: [409],
      },
    })
    .input(z.strictObject({ id }))
    .output(z.object({ id: z.string(), removedAt: timestamp }))
    .mutation(({ ctx, input }) => removeUser(ctx.users, input.id)),
}

export function samePassword(password: string, others: string[]): boolean {
  const folded = password.trim().toLowerCase()
  return others.some((other) => other.toLowerCase() === folded)
}
