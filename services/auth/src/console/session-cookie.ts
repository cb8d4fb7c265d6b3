import { getTRPCErrorFromUnknown, type TRPCError } from '@trpc/server'
import { getHTTPStatusCodeFromError } from '@trpc/server/http'
import express from 'express'
import type { Logger } from 'pino'
import { createContextInner } from '../context.ts'
import type { Deps } from '../deps.ts'
import { RateLimitedError } from '../errors.ts'
import { requestMeta, type Trust } from '../http/request-meta.ts'
import { appRouter } from '../router.ts'
import { createCallerFactory, describeError } from '../trpc.ts'

/**
 * The console's session: the session JWT from `auth.login` in an httpOnly,
 * SameSite=Strict cookie, so no script (the console's own included) can read it and
 * no other site can send it. Every console request also carries `x-tokend-console: 1`,
 * a header a cross-origin page cannot add without a CORS preflight tokend never
 * grants: the cookie is only ever turned into a credential on requests that have it.
 */
export const SESSION_COOKIE = 'tokend_session'
export const CONSOLE_HEADER = 'x-tokend-console'

const createCaller = createCallerFactory(appRouter)

/** `POST` signs in (sets the cookie), `DELETE` signs out (revokes the session, clears the cookie). */
export function sessionRoutes(deps: Deps, trust: Trust): express.Router {
  const { logger } = deps
  const routes = express.Router()
  routes.use((req, res, next) => {
    res.setHeader('cache-control', 'no-store')
    if (req.headers[CONSOLE_HEADER] === '1') return next()
    res.status(403).json({ error: { code: 'forbidden', message: `console requests carry ${CONSOLE_HEADER}: 1` } })
  })
  routes.use(express.json({ limit: '16kb' }))

  routes.post('/', async (req, res) => {
    try {
      const signedIn = await callerFor(deps, trust, req, undefined).auth.login(req.body)
      const maxAge = Math.max(0, Math.floor((Date.parse(signedIn.expiresAt) - Date.now()) / 1000))
      res.setHeader('set-cookie', cookie(req, signedIn.token, maxAge))
      res.json({ username: signedIn.username, expiresAt: signedIn.expiresAt })
    } catch (cause) {
      sendError(res, getTRPCErrorFromUnknown(cause), req.log ?? logger)
    }
  })

  routes.delete('/', async (req, res) => {
    const token = sessionToken(req.headers.cookie)
    res.setHeader('set-cookie', cookie(req, '', 0))
    if (!token) {
      res.status(204).end()
      return
    }
    try {
      // The same path as auth.logout: the session is revoked on every replica.
      await callerFor(deps, trust, req, `Bearer ${token}`).auth.logout()
      res.status(204).end()
    } catch (cause) {
      const error = getTRPCErrorFromUnknown(cause)
      // A session that is already over needs no revoking; the cookie is cleared all the same.
      if (error.code === 'UNAUTHORIZED' || error.code === 'FORBIDDEN') res.status(204).end()
      else sendError(res, error, req.log ?? logger)
    }
  })

  // Body parser failures: malformed JSON or too large.
  routes.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const status = (error as { status?: number }).status === 413 ? 413 : 400
    res.status(status).json({ error: { code: 'invalid_input', message: 'the body is not valid JSON' } })
  })
  return routes
}

/**
 * Before /trpc: a console request without an Authorization header gets its session
 * cookie as the bearer. The change stream (an EventSource, which cannot send headers)
 * is the one exception to the header rule: it is a read-only GET, and a page of
 * another origin can neither receive the cookie (SameSite=Strict) nor read the stream.
 */
export function cookieCredentials(req: express.Request, _res: express.Response, next: express.NextFunction): void {
  if (req.headers.authorization === undefined) {
    const fromConsole =
      req.headers[CONSOLE_HEADER] === '1' ||
      (req.method === 'GET' && req.path === '/token.changes' && req.headers.accept === 'text/event-stream')
    const token = fromConsole ? sessionToken(req.headers.cookie) : null
    if (token) req.headers.authorization = `Bearer ${token}`
  }
  next()
}

/** The session cookie's value, or null. */
export function sessionToken(header: string | undefined): string | null {
  if (!header) return null
  for (const part of header.split(';')) {
    const [name, ...value] = part.trim().split('=')
    if (name === SESSION_COOKIE) return value.join('=') || null
  }
  return null
}

function cookie(req: express.Request, value: string, maxAgeS: number): string {
  // Secure whenever the console is reached over https (directly or behind a trusted proxy).
  const secure = req.secure ? '; Secure' : ''
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${secure}`
}

function callerFor(deps: Deps, trust: Trust, req: express.Request, authorization: string | undefined) {
  return createCaller(createContextInner(deps, requestMeta(req, { id: String(req.id), trust }), authorization))
}

/** Errors in the REST shape (`{ error: { code, message, issues?, retryAfterMs? } }`) with the same status. */
function sendError(res: express.Response, error: TRPCError, log: Logger): void {
  if (error.code === 'INTERNAL_SERVER_ERROR') log.error({ err: error.cause ?? error }, 'console sign-in failed')
  if (error.cause instanceof RateLimitedError) {
    res.setHeader('retry-after', String(Math.ceil(error.cause.retryAfterMs / 1000)))
  }
  const { reason, message, issues, retryAfterMs } = describeError(error)
  res.status(getHTTPStatusCodeFromError(error)).json({ error: { code: reason, message, issues, retryAfterMs } })
}
