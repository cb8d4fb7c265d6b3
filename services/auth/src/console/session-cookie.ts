import { getTRPCErrorFromUnknown, TRPCError } from '@trpc/server'
import express from 'express'
import { createContextInner } from '../context.ts'
import type { Deps } from '../deps.ts'
import { reportError } from '../http/report.ts'
import { requestMeta, type Trust } from '../http/request-meta.ts'
import { restError } from '../http/rest.ts'
import { appRouter } from '../router.ts'
import { createCallerFactory } from '../trpc.ts'

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
  // Errors as the REST API answers them (status, reason, Retry-After), reported alike.
  const fail = (req: express.Request, res: express.Response, error: TRPCError) => {
    reportError(deps, error, { path: 'console.session', requestId: String(req.id), log: req.log })
    restError(res, error)
  }
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
      fail(req, res, getTRPCErrorFromUnknown(cause))
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
      else fail(req, res, error)
    }
  })

  // Body parser failures: malformed JSON or too large.
  routes.use((error: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const tooLarge = (error as { status?: number }).status === 413
    const code = tooLarge ? 'PAYLOAD_TOO_LARGE' : 'PARSE_ERROR'
    const message = tooLarge ? 'the body is too large' : 'the body is not valid JSON'
    fail(req, res, new TRPCError({ code, message, cause: error }))
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
