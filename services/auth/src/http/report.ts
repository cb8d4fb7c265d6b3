import type { TRPCError } from '@trpc/server'
import type { Logger } from 'pino'
import type { Deps } from '../deps.ts'

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
