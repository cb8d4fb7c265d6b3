import express from 'express'
import type { Deps } from '../deps.ts'
import type { Trust } from '../http/request-meta.ts'
import { consoleAssets, consoleDir } from './assets.ts'
import { cookieCredentials, sessionRoutes } from './session-cookie.ts'

/**
 * Everything the web console needs from tokend's HTTP server, mounted before /trpc:
 * `/` sends people to the console, `/console/api/session` signs in and out, the
 * session cookie becomes a bearer on console calls to /trpc, and /console serves the
 * built app (apps/console).
 */
export function consoleHttp(deps: Deps, trust: Trust): express.Router {
  const routes = express.Router()
  routes.get('/', (_req, res) => {
    res.redirect(302, '/console/')
  })
  routes.use('/console/api/session', sessionRoutes(deps, trust))
  routes.use('/console', consoleAssets(consoleDir()))
  routes.use('/trpc', cookieCredentials)
  return routes
}
