/**
 * tokend could not give an answer: it was unreachable, timed out, or failed (5xx).
 * An outage is never an accept: treat the caller as not verified (503 in HTTP).
 *
 * @example
 * ```ts
 * try {
 *   const result = await tokend.verify(key)
 * } catch (error) {
 *   if (error instanceof TokendUnavailableError) res.status(503).end()
 *   else throw error
 * }
 * ```
 */
export class TokendUnavailableError extends Error {
  constructor(
    message: string,
    /** The HTTP status tokend answered with, when it answered at all. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'TokendUnavailableError'
  }
}

/**
 * What keeps this service from verifying anything, as `ready()` finds it: tokend cannot be
 * reached (`unreachable`), it does not accept the service key (`key_rejected`), or the key
 * lacks the `tokend:verify` scope (`missing_scope`).
 *
 * @example
 * ```ts
 * try {
 *   await tokend.ready()
 * } catch (error) {
 *   if (error instanceof TokendSetupError) logger.fatal(error.message) // names the option to fix
 *   process.exit(1)
 * }
 * ```
 */
export class TokendSetupError extends Error {
  constructor(
    message: string,
    readonly problem: 'unreachable' | 'key_rejected' | 'missing_scope',
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'TokendSetupError'
  }
}

/**
 * tokend refused this service's own request (4xx): the service key is wrong, lacks
 * `tokend:verify`, or the input was refused. A configuration error, not an outage;
 * it is not retried, and it is never an accept either.
 *
 * @example
 * ```ts
 * if (error instanceof TokendRejectedError && error.status === 401) log.fatal('TOKEND_SERVICE_KEY is not valid')
 * ```
 */
export class TokendRejectedError extends Error {
  constructor(
    message: string,
    /** The HTTP status tokend answered with. */
    readonly status: number,
    /** tokend's stable `error.data.reason`, e.g. `invalid_token`, `forbidden`, `invalid_input`. */
    readonly reason: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'TokendRejectedError'
  }
}
