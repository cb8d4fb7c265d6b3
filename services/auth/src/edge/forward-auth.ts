import type { IncomingMessage, ServerResponse } from 'node:http'
import { findCredential } from '@tokend/keys'
import proxyaddr from 'proxy-addr'
import type { Deps } from '../deps.ts'
import type { Handler } from '../http/fast-verify.ts'
import { answerUnexpected, reportError } from '../http/report.ts'
import { requestId, type Trust } from '../http/request-meta.ts'
import { restError, sendJson } from '../http/rest.ts'
import { toTRPCError } from '../trpc.ts'
import { type EdgeRequirements, edgeCheck, PRINCIPAL_HEADERS, parseRequirements } from './edge-check.ts'

export const EDGE_AUTH = '/edge/auth'

/**
 * HTTP forward-auth (SPEC §12) for nginx `auth_request`, Traefik `ForwardAuth` and
 * Envoy's HTTP ext_authz, in front of express like the verify fast path: it is on
 * every request the proxy forwards.
 *
 * - `/edge/auth?scope=a&scope=b&environment=live&audience=voice-api&ratelimit=name:limit:windowMs` (any
 *   method): nginx and Traefik. The original request's URI comes in `X-Original-URI`
 *   (nginx) or `X-Forwarded-Uri` (Traefik).
 * - `/edge/auth/<original path and query>`: Envoy's HTTP ext_authz with
 *   `path_prefix: /edge/auth`; requirements in `x-tokend-require-*` headers
 *   (`-scopes` comma-separated, `-environment`, `-audience`, `-ratelimit`), which any proxy may use.
 *
 * The credential is the original request's (`Authorization`, or `?accesskey=` /
 * `?token=` of its URI by §10's rules). 200 allows, with the principal's
 * `x-tokend-*` headers (and `x-envoy-auth-headers-to-remove` naming any other
 * `x-tokend-*` the client sent); 401/403/429 refuse as the client middleware does, with
 * `x-tokend-reason` (the error code) and `x-tokend-message` (JSON-escaped) for proxies that
 * write their own error bodies. nginx turns statuses other than 2xx/401/403 into 500, so
 * a request saying `X-Tokend-Proxy: nginx` gets a rate limit as 403 with
 * `x-tokend-reason: rate_limited` and `Retry-After`, which infra/nginx maps back to 429.
 */
export function withForwardAuth(deps: Deps, trust: Trust, next: Handler): Handler {
  return (req, res) => {
    const url = req.url ?? ''
    if (url === EDGE_AUTH || url.startsWith(`${EDGE_AUTH}?`) || url.startsWith(`${EDGE_AUTH}/`)) {
      forwardAuth(deps, trust, req, res).catch((error: unknown) => answerUnexpected(deps, error, req, res))
      return
    }
    next(req, res)
  }
}

async function forwardAuth(deps: Deps, trust: Trust, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const id = requestId(req, res)
  // A proxy sends the original request's headers only; any body is not ours to read.
  req.resume()
  const url = req.url ?? ''
  const envoyUri = url.startsWith(`${EDGE_AUTH}/`) ? url.slice(EDGE_AUTH.length) : undefined
  const query =
    envoyUri === undefined && url.includes('?') ? new URLSearchParams(url.slice(url.indexOf('?') + 1)) : null
  const requirements: EdgeRequirements = {
    scopes: [...(query?.getAll('scope') ?? []), header(req, 'x-tokend-require-scopes') ?? ''].join(','),
    environment: query?.get('environment') ?? header(req, 'x-tokend-require-environment'),
    audience: query?.get('audience') ?? header(req, 'x-tokend-require-audience'),
    ratelimit: query?.get('ratelimit') ?? header(req, 'x-tokend-require-ratelimit'),
  }
  const originalUri = header(req, 'x-original-uri') ?? header(req, 'x-forwarded-uri') ?? envoyUri ?? ''
  try {
    const answer = await edgeCheck(
      deps,
      findCredential(req.headers.authorization, originalUri),
      parseRequirements(requirements),
      // The original client: the proxy's X-Forwarded-For when TOKEND_TRUST_PROXY trusts the proxy, else the proxy itself.
      proxyaddr(req, trust),
    )
    if (answer.allowed) {
      const forged = Object.keys(req.headers).filter(
        (name) => name.startsWith('x-tokend-') && !(PRINCIPAL_HEADERS as readonly string[]).includes(name),
      )
      const headers: Record<string, string> = { 'cache-control': 'no-store', ...answer.headers }
      if (forged.length > 0) headers['x-envoy-auth-headers-to-remove'] = forged.join(', ')
      res.writeHead(200, { ...headers, 'content-length': 0 })
      res.end()
    } else {
      const { refusal } = answer
      const nginx = header(req, 'x-tokend-proxy') === 'nginx' && refusal.status === 429
      sendJson(res, nginx ? 403 : refusal.status, refusal.body, {
        ...refusal.headers,
        'x-tokend-reason': answer.reason,
        'x-tokend-message': JSON.stringify(refusal.body.error.message).slice(1, -1),
      })
    }
  } catch (cause) {
    const error = toTRPCError(cause)
    reportError(deps, error, { path: EDGE_AUTH, requestId: id })
    restError(res, error)
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(',') : value
}
