import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import express from 'express'

/**
 * Where the built console is: apps/console/dist beside this source tree, or `console/`
 * beside the bundle (dist/main.js) in the image.
 */
const CANDIDATES = [
  new URL('../../../../apps/console/dist/', import.meta.url),
  new URL('./console/', import.meta.url),
].map((url) => fileURLToPath(url))

export function consoleDir(): string | undefined {
  return CANDIDATES.find((dir) => existsSync(join(dir, 'index.html')))
}

/**
 * No inline script or style, nothing from another origin, and never inside a frame.
 * Vite's production build emits only `<script type="module" src>` and `<link rel=stylesheet>`.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

function securityHeaders(_req: express.Request, res: express.Response, next: express.NextFunction): void {
  res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY)
  res.setHeader('x-frame-options', 'DENY')
  res.setHeader('x-content-type-options', 'nosniff')
  res.setHeader('referrer-policy', 'no-referrer')
  res.setHeader('cross-origin-opener-policy', 'same-origin')
  next()
}

/**
 * The console's files under /console: hashed assets cached for a year (their names
 * change with their content), everything else answered with index.html and `no-store`,
 * so a new build is picked up at once and a signed-out page is never kept.
 */
export function consoleAssets(dir: string | undefined): express.Router {
  const routes = express.Router()
  routes.use(securityHeaders)
  if (!dir) {
    routes.use((_req, res) => {
      res.status(503).type('text/plain').send('The console is not built: run `pnpm build` (or `pnpm start`).\n')
    })
    return routes
  }
  routes.use(
    '/assets',
    express.static(join(dir, 'assets'), {
      index: false,
      fallthrough: true,
      cacheControl: false,
      setHeaders: (res) => res.setHeader('cache-control', 'public, max-age=31536000, immutable'),
    }),
    (_req, res) => {
      res.status(404).type('text/plain').send('no such asset\n')
    },
  )
  routes.use(
    express.static(dir, {
      index: false,
      cacheControl: false,
      setHeaders: (res, path) => res.setHeader('cache-control', path.endsWith('.html') ? 'no-store' : 'no-cache'),
    }),
  )
  routes.get(/.*/, async (_req, res) => {
    res.setHeader('cache-control', 'no-store')
    res.type('html').send(await readFile(join(dir, 'index.html')))
  })
  return routes
}
