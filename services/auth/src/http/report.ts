import type { IncomingMessage, ServerResponse } from 'node:http'
import { TRPCError } from '@trpc/server'
import type { Logger } from 'pino'
import type { Deps } from '../deps.ts'
import { instanceOf, REST_BASE, restProblem, sendJson } from './rest.ts'

/**
 * What every transport does with an error it answers: an unexpected one is logged with
 * its cause and counted (the caller sees only "internal error" and the request id); an
 * outage is logged as a warning; a refusal is the caller's business and is not logged.
 */
export function reportError(
  deps: Pick<Deps, 'logger' | 'metrics'>,
  error: TRPCError,
  where: { path: string | undefined; requestId: string | undefined; log?: Logger | undefined },
): void {
  const log = where.log ?? deps.logger
  if (error.code === 'INTERNAL_SERVER_ERROR') {
    deps.metrics.unexpected('request')
    log.error({ err: error.cause ?? error, path: where.path, requestId: where.requestId }, 'procedure failed')
  } else if (error.code === 'SERVICE_UNAVAILABLE') {
    log.warn({ err: error.cause, path: where.path, requestId: where.requestId }, 'database unavailable')
  }
}

/**
 * The last line of defence for a request: an error that escaped its handler is logged
 * with the request id and counted, and the request is answered 500 (or cut, when its
 * answer had already begun). The process carries on.
 */
export function answerUnexpected(
  deps: Pick<Deps, 'logger' | 'metrics'>,
  error: unknown,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const id = res.getHeader('x-request-id')
  deps.metrics.unexpected('request')
  deps.logger.error({ err: error, requestId: id, path: instanceOf(req.url) }, 'request failed')
  if (res.headersSent) {
    res.destroy()
    return
  }
  const path = instanceOf(req.url)
  if (path.startsWith(`${REST_BASE}/`)) {
    const error = new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'internal error' })
    restProblem(res, error, { instance: path, requestId: id === undefined ? undefined : String(id) })
    return
  }
  sendJson(res, 500, { error: { code: 'internal', message: 'internal error', requestId: id } })
}
