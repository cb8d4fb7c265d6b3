import { z } from 'zod'
import { signup } from '../accounts/account.service.ts'
import { boot } from '../directs/direct.service.ts'
import { actorOf } from '../principal.ts'
import { authedProcedure, publicProcedure } from '../trpc.ts'
import { samePassword } from '../users/user.router.ts'
import { email, givenPassword, newPassword, username } from '../validation.ts'
import { listSigningKeys, login, logout, rotateSigningKey } from './session.service.ts'

const directHash = z
  .string({ error: (issue) => (issue.input === undefined ? 'directHash is required' : 'directHash must be a string') })
  // Empty is its own case: stop there rather than also report the missing prefix.
  .min(1, { error: 'directHash is empty', abort: true })
  .max(200, 'directHash is too long to be a direct hash')
  .startsWith('direct.', 'directHash must start with "direct." (copy it whole from the direct link)')

/** Procedures without credentials (signup, login, boot), and logout. */
export const authRouter = {
  signup: publicProcedure
    .input(
      z
        .strictObject({ accountName: z.string().trim().min(1).max(100), username, email, password: newPassword })
        .refine((input) => !samePassword(input.password, [input.username, input.email]), {
          message: 'the password must not be the username or the email',
          path: ['password'],
        }),
    )
    .mutation(({ ctx, input }) => signup(ctx.deps, ctx.meta, input)),

  login: publicProcedure
    .input(z.strictObject({ username: z.string().trim().toLowerCase().min(1).max(64), password: givenPassword }))
    .mutation(({ ctx, input }) => login(ctx.deps, ctx.meta, input)),

  logout: authedProcedure.mutation(({ ctx }) => logout(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta))),

  boot: publicProcedure
    // A missing body reads as a missing hash, so the answer names the field either way.
    .input(z.preprocess((value) => value ?? {}, z.strictObject({ directHash })))
    .mutation(({ ctx, input }) => boot(ctx.deps, ctx.meta, input.directHash)),
}

export const signingKeyRouter = {
  list: authedProcedure.query(({ ctx }) => listSigningKeys(ctx.deps, ctx.principal)),
  rotate: authedProcedure.mutation(({ ctx }) =>
    rotateSigningKey(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta)),
  ),
}
