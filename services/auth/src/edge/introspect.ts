import express from 'express'
import { decodeTime } from 'ulid'
import { createContext } from '../context.ts'
import type { Deps } from '../deps.ts'
import { InvalidInputError, UnauthenticatedError } from '../errors.ts'
import { reportError } from '../http/report.ts'
import type { Trust } from '../http/request-meta.ts'
import { restError, sendJson } from '../http/rest.ts'
import { isIpAddress } from '../tokens/key-controls.ts'
import { answerVerify, type VerifyResult } from '../tokens/verify.ts'
import { toTRPCError } from '../trpc.ts'

/**
 * RFC 7662 token introspection at `POST /oauth/introspect` (SPEC §15): a form body
 * `token=…`, the caller authenticated as for token.verify (a key holding
 * `tokend:verify`), answered by the same `answerVerify`. Anything not valid is
 * `{"active":false}` and nothing else; errors are tokend's REST errors, with RFC 6750
 * challenges on 401 and 403.
 */
export function introspection(deps: Deps, trust: Trust): express.Router {
  const router = express.Router()
  router.post('/introspect', express.urlencoded({ extended: false, limit: '16kb' }), async (req, res) => {
    try {
      const body = (req.body ?? {}) as Record<string, unknown>
      const token = body.token
      if (!req.is('application/x-www-form-urlencoded')) {
        throw new InvalidInputError('send a form (application/x-www-form-urlencoded) with token=…')
      }
      if (typeof token !== 'string' || token === '') throw new InvalidInputError('token is required', 'token')
      if (token.length > 4096 || token.includes('\u0000')) {
        sendJson(res, 200, { active: false })
        return
      }
      // An extension to RFC 7662: the address the token was presented from, for keys bound to networks.
      const clientIp = body.client_ip
      if (clientIp !== undefined && (typeof clientIp !== 'string' || !isIpAddress(clientIp))) {
        throw new InvalidInputError('client_ip is an IPv4 or IPv6 address', 'client_ip')
      }
      const caller = await createContext(deps, req, { id: String(req.id), trust }).authenticate()
      if (!caller) throw new UnauthenticatedError()
      const input = clientIp === undefined ? { token } : { token, clientIp }
      sendJson(res, 200, introspected(await answerVerify(deps, caller, input)))
    } catch (cause) {
      const error = toTRPCError(cause)
      reportError(deps, error, { path: '/oauth/introspect', requestId: String(req.id), log: req.log })
      restError(res, error)
    }
  })
  return router
}

/** A verify result as RFC 7662 writes it, tokend's own fields after the standard ones. */
function introspected(result: VerifyResult): Record<string, unknown> {
  if (!result.valid) return { active: false }
  const seconds = (ms: number) => Math.floor(ms / 1000)
  return {
    active: true,
    scope: result.scopes.join(' '),
    client_id: result.tokenId,
    sub: result.kind === 'session' ? result.userId : result.accountId,
    ...(result.expiresAt !== null && { exp: seconds(Date.parse(result.expiresAt)) }),
    // Ids are ULIDs: their first characters are the moment they were made. A derived
    // token's id is its parent key's, made before it: it says its audience instead.
    ...(result.kind === 'derived'
      ? { aud: result.audience }
      : { iat: seconds(decodeTime(result.tokenId.slice(result.tokenId.indexOf('_') + 1))) }),
    token_type: 'Bearer',
    kind: result.kind,
    token_id: result.tokenId,
    account_id: result.accountId,
    environment: result.environment,
    role: result.role,
    name: result.name,
  }
}
