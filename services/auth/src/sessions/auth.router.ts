import { z } from 'zod'
import { accountInfo } from '../accounts/account.router.ts'
import { signup } from '../accounts/account.service.ts'
import { boot } from '../directs/direct.service.ts'
import { actorOf } from '../principal.ts'
import { issuedToken } from '../tokens/token.router.ts'
import { authedProcedure, publicProcedure } from '../trpc.ts'
import { samePassword, userInfo } from '../users/user.router.ts'
import { email, givenPassword, newPassword, timestamp, username } from '../validation.ts'
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
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/signup',
        tags: ['auth'],
        summary: 'Sign up: a trial account, its first admin user and a test key (when sign-up is open)',
        protect: false,
        errorResponses: [403, 409, 429],
      },
    })
    .input(
      z
        .strictObject({ accountName: z.string().trim().min(1).max(100), username, email, password: newPassword })
        .refine((input) => !samePassword(input.password, [input.username, input.email]), {
          message: 'the password must not be the username or the email',
          path: ['password'],
        }),
    )
    .output(z.object({ account: accountInfo, user: userInfo, accessKey: issuedToken }))
    .mutation(({ ctx, input }) => signup(ctx.deps, ctx.meta, input)),

  login: publicProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/login',
        tags: ['auth'],
        summary: 'Sign in: a session JWT valid 7 days',
        protect: false,
        errorResponses: [401, 429],
      },
    })
    .input(z.strictObject({ username: z.string().trim().toLowerCase().min(1).max(64), password: givenPassword }))
    .output(z.object({ username: z.string(), token: z.string(), expiresAt: timestamp }))
    .mutation(({ ctx, input }) => login(ctx.deps, ctx.meta, input)),

  logout: authedProcedure
    .meta({
      openapi: { method: 'POST', path: '/auth/logout', tags: ['auth'], summary: "End the caller's session" },
    })
    .output(z.object({ sessionId: z.string(), revokedAt: timestamp }))
    .mutation(({ ctx }) => logout(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta))),

  boot: publicProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/boot',
        tags: ['auth'],
        summary: 'Exchange a direct hash for a JWT valid 4 hours that reaches only its resource',
        protect: false,
      },
    })
    // A missing body reads as a missing hash, so the answer names the field either way.
    .input(z.preprocess((value) => value ?? {}, z.strictObject({ directHash })))
    .output(
      z.object({
        token: z.string(),
        type: z.literal('direct'),
        resourceType: z.string(),
        resourceId: z.string(),
        accountId: z.string(),
        expiresAt: timestamp,
      }),
    )
    .mutation(({ ctx, input }) => boot(ctx.deps, ctx.meta, input.directHash)),
}

export const signingKeyRouter = {
  list: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/signing-keys',
        tags: ['signing keys'],
        summary: 'List JWT signing keys (operator)',
      },
    })
    .output(
      z.array(
        z.object({ kid: z.string(), createdAt: timestamp, retiredAt: timestamp.nullable(), signing: z.boolean() }),
      ),
    )
    .query(({ ctx }) => listSigningKeys(ctx.deps, ctx.principal)),
  rotate: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/signing-keys/rotate',
        tags: ['signing keys'],
        summary: 'Sign new JWTs with a new key; live tokens keep verifying (operator admin)',
      },
    })
    .output(z.object({ kid: z.string(), createdAt: timestamp }))
    .mutation(({ ctx }) => rotateSigningKey(ctx.deps, ctx.principal, actorOf(ctx.principal, ctx.meta))),
}
