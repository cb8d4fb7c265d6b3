import { TRPCClientError } from '@trpc/client'

/** Exit codes by kind of failure, so scripts can tell them apart (see README). */
export const EXIT = {
  ok: 0,
  /** `verify` answered with a denial; also anything unexpected. */
  denied: 1,
  /** Bad arguments, or input tokend refused (400). */
  usage: 2,
  /** No key, a key tokend does not accept (401), or a key that may not do this (403). */
  auth: 3,
  notFound: 4,
  /** A conflict (409: revoked key, key limit) or a rate limit (429). */
  conflict: 5,
  /** tokend unreachable, timed out, or failing (5xx). */
  unavailable: 6,
} as const

/** A failure the CLI explains in one line; `reason` is tokend's `error.data.reason` when there is one. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly reason?: string,
  ) {
    super(message)
    this.name = 'CliError'
  }
}

interface ErrorData {
  httpStatus?: number
  reason?: string
  retryAfterMs?: number
}

/**
 * The one place a failed call becomes a message and an exit code. tokend's message and
 * reason are shown as they are; a network failure names the address (never a key).
 */
export function explain(error: unknown, url: string): CliError {
  if (error instanceof CliError) return error
  if (!(error instanceof TRPCClientError)) {
    return new CliError(error instanceof Error ? error.message : String(error), EXIT.denied)
  }
  const data = (error.data ?? {}) as ErrorData
  const status = data.httpStatus
  if (status === undefined) {
    return new CliError(
      `cannot reach tokend at ${url}: ${causes(error)} (is it running? give its address with --url or TOKEND_URL, or save it with tokend login)`,
      EXIT.unavailable,
      'unavailable',
    )
  }
  let message = error.message
  if (status === 401) message += ' (check TOKEND_KEY, --key-file or the key saved by tokend login)'
  if (data.retryAfterMs !== undefined) message += ` (retry in ${Math.ceil(data.retryAfterMs / 1000)} s)`
  return new CliError(message, exitCodeOf(status), data.reason)
}

function exitCodeOf(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth
  if (status === 404) return EXIT.notFound
  if (status === 409 || status === 429) return EXIT.conflict
  if (status >= 500 || status === 408) return EXIT.unavailable
  return EXIT.usage
}

/** `fetch failed: connect ECONNREFUSED 127.0.0.1:3000`: every message down the cause chain. */
function causes(error: unknown): string {
  const messages: string[] = []
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause.message !== messages.at(-1)) messages.push(cause.message)
  }
  return messages.join(': ')
}
