import type { AppRouter, RouterInputs } from '@tokend/auth'
import { credentialKind, digestKey } from '@tokend/keys'
import {
  createTRPCClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  type TRPCClient,
  TRPCClientError,
} from '@trpc/client'
import { EventSource } from 'eventsource'
import type { RequestHandler } from 'express'
import { LRUCache } from 'lru-cache'
import { applyRequirements, type CacheOptions, VerifyCache } from './cache.ts'
import { type DerivedClaims, DerivedTokens, derivedResult, isDerivedToken } from './derived.ts'
import { TokendRejectedError, TokendSetupError, TokendUnavailableError } from './errors.ts'
import { type RequireAuthOptions, requireAuth } from './middleware.ts'
import { activeTraceparent, isTraceparent } from './trace-context.ts'
import type { DerivedToken, ExchangeInput, RateLimit, Requirements, VerifyResult } from './types.ts'

/**
 * What the client logs (the change stream's state, 503s): pino's `(fields, message)`
 * signature, so a pino logger fits as is. It never receives a credential.
 *
 * @example
 * ```ts
 * createTokendClient({ url, serviceKey, logger: pino() })
 * ```
 */
export interface TokendLogger {
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
}

/**
 * Options of `createTokendClient`; only `url` and `serviceKey` are required.
 *
 * @example
 * ```ts
 * const options: TokendClientOptions = { url: 'http://127.0.0.1:3000', serviceKey, timeoutMs: 1_000, retries: 2 }
 * ```
 */
export interface TokendClientOptions {
  /** tokend's base URL, e.g. `http://127.0.0.1:3000` (tRPC is at `/trpc`). */
  url: string
  /** This service's own access key; it needs the `tokend:verify` scope. */
  serviceKey: string
  /** How long one HTTP request to tokend may take. Default 2000 ms. */
  timeoutMs?: number
  /** Extra attempts after an outage (network error, timeout, 5xx), for idempotent calls only. Default 1. */
  retries?: number
  /** Turns on the local cache, kept fresh by tokend's change stream. Off by default. */
  cache?: CacheOptions | boolean
  /** The deployment's key prefix (SPEC §3). Default `tk`. */
  prefix?: string
  /** The realm named in `WWW-Authenticate` by `requireAuth`. Default `api`. */
  realm?: string
  /** Where the client logs; by default one JSON line per message on stderr. */
  logger?: TokendLogger
}

/**
 * Requirements for one verify, plus an optional rate limit counted by tokend.
 *
 * @example
 * ```ts
 * await tokend.verify(key, { scopes: ['recordings:read'], environment: 'live' })
 * ```
 */
export interface VerifyOptions extends Requirements {
  /** Counted by tokend; a rate-limited verify always asks tokend and is only retried if it was never sent. */
  ratelimit?: RateLimit
  /**
   * The address the credential was presented from (IPv4 or IPv6). A key bound to networks
   * (`allowedCidrs`) is refused as `IP_NOT_ALLOWED` from elsewhere or without it; such
   * keys' answers are never cached, so each of their verifies asks tokend.
   */
  clientIp?: string
  /**
   * Usage credits to spend, for keys with credits (default 1; 0 checks without spending).
   * A verify of a key with credits always asks tokend, and is only retried if it was never sent.
   */
  cost?: number
  /**
   * The W3C `traceparent` sent to tokend with this verify, so tokend's spans join the
   * caller's trace. By default, the active OpenTelemetry span's when `@opentelemetry/api`
   * is installed; `requireAuth` falls back to the incoming request's header. A value that
   * is not a well-formed `traceparent` is not sent. A verify answered from the local cache
   * sends nothing.
   */
  traceparent?: string
}

/**
 * Counters for metrics and tests.
 *
 * @example
 * ```ts
 * metrics.gauge('tokend_cache_hits', tokend.stats.cacheHits)
 * ```
 */
export interface TokendClientStats {
  /** `token.verify` calls sent to tokend (a batch of n counts n). */
  networkVerifies: number
  /** HTTP requests sent to tokend for queries and mutations (batching makes this smaller than the calls). */
  httpRequests: number
  /** Verifies answered from the local cache. */
  cacheHits: number
  /** Credentials rejected offline as malformed (or a derived token as expired), without a network call. */
  localRejects: number
  /** Derived tokens answered offline: signature from the key set, parent from the local cache. */
  offlineVerifies: number
  /** Fetches of tokend's key set (`/.well-known/jwks.json`), made for a `kid` not seen before. */
  jwksFetches: number
}

/**
 * What `createTokendClient` returns: `verify`, `requireAuth`, the cache's state and the
 * typed tRPC client.
 *
 * @example
 * ```ts
 * const tokend: TokendClient = createTokendClient({ url, serviceKey })
 * ```
 */
export interface TokendClient {
  /**
   * Verifies a credential: an access key or a JWT. Malformed access keys are refused
   * offline. Resolves with tokend's `VerifyResult` (a denial is a result); throws
   * `TokendUnavailableError` when tokend cannot answer and `TokendRejectedError`
   * when it refuses this service's own request — never a guess.
   *
   * @example
   * ```ts
   * const result = await tokend.verify(key, { scopes: ['recordings:read'] })
   * if (result.valid) console.log(result.accountId, result.environment)
   * else console.log(result.reason) // e.g. 'REVOKED'
   * ```
   */
  verify(credential: string, options?: VerifyOptions): Promise<VerifyResult>
  /**
   * Exchanges this service's own key for a derived token (SPEC §14): a JWT for one
   * audience, ≤ 15 minutes, with a subset of the key's scopes, which the audience's
   * `@tokend/client` verifies offline. Cache it until shortly before `expiresAt`.
   *
   * @example
   * ```ts
   * const { token, expiresAt } = await tokend.exchange({ audience: 'voice-api', scopes: ['recordings:read'] })
   * await fetch('http://voice-api/v1/recordings', { headers: { authorization: `Bearer ${token}` } })
   * ```
   */
  exchange(input: ExchangeInput): Promise<DerivedToken>
  /**
   * Express middleware: 401/403/429 for denials, 503 when tokend cannot answer, and
   * the principal on `req.auth` otherwise. Same as `requireAuth(tokend, options)`.
   *
   * @example
   * ```ts
   * app.get('/v1/recordings', tokend.requireAuth({ scopes: ['recordings:read'] }), (req, res) => {
   *   res.json(listRecordings(req.auth!.accountId, req.auth!.environment))
   * })
   * ```
   */
  requireAuth(options?: RequireAuthOptions): RequestHandler
  /**
   * Checks once that this service can verify: tokend answers, accepts the service key,
   * and the key holds `tokend:verify`. Rejects with a `TokendSetupError` saying which of
   * the three is wrong. Call it at start-up; verifies do not need it.
   *
   * @example
   * ```ts
   * await tokend.ready() // TokendSetupError: tokend rejected the service key (401 invalid_token) …
   * app.listen(port)
   * ```
   */
  ready(): Promise<void>
  /**
   * Resolves true once the local cache answers (its change stream said `ready`), false
   * after `timeoutMs` or when the cache is off. Verifies work before that; they ask tokend.
   *
   * @example
   * ```ts
   * await tokend.cacheReady(5_000)
   * ```
   */
  cacheReady(timeoutMs?: number): Promise<boolean>
  /** Whether the local cache is answering right now. */
  readonly cacheActive: boolean
  /**
   * The typed tRPC client for any other procedure, authenticated as this service.
   *
   * @example
   * ```ts
   * const me = await tokend.trpc.me.query()
   * ```
   */
  readonly trpc: TRPCClient<AppRouter>
  readonly stats: TokendClientStats
  /** Closes the change stream. */
  close(): void
  /** @internal the key prefix, for the middleware */
  readonly prefix: string
  /** @internal the realm, for the middleware */
  readonly realm: string
  /** @internal */
  readonly logger: TokendLogger
  /** @internal logs a failure the first time its kind is seen */
  reportFailure(error: unknown): void
}

const MAX_BATCH = 100
const BACKOFF_MS = 50
const STREAM_BACKOFF_MAX_MS = 5_000

/**
 * Creates a client for tokend: verifies are batched (concurrent calls share one HTTP
 * request), time-limited and retried only when that is safe; an outage throws
 * `TokendUnavailableError`, never an accept. With `cache`, answers are kept locally
 * and dropped the moment tokend's change stream reports a change or goes away.
 *
 * @example
 * ```ts
 * import { createTokendClient } from '@tokend/client'
 *
 * const tokend = createTokendClient({
 *   url: 'http://127.0.0.1:3000',
 *   serviceKey: process.env.TOKEND_SERVICE_KEY!,
 *   cache: { ttlMs: 30_000 },
 * })
 * app.use('/v1', tokend.requireAuth())
 * ```
 */
export function createTokendClient(options: TokendClientOptions): TokendClient {
  checkOptions(options)
  const timeoutMs = options.timeoutMs ?? 2_000
  const retries = options.retries ?? 1
  const prefix = options.prefix ?? 'tk'
  const logger = options.logger ?? stderrLogger
  const authorization = `Bearer ${options.serviceKey}`
  const stats: TokendClientStats = {
    networkVerifies: 0,
    httpRequests: 0,
    cacheHits: 0,
    localRejects: 0,
    offlineVerifies: 0,
    jwksFetches: 0,
  }
  const url = `${options.url.replace(/\/+$/, '')}/trpc`

  // A timer of our own rather than AbortSignal.timeout: combined with AbortSignal.any, Node 20
  // may collect that signal before it fires, and the request then waits for ever. The timer
  // runs on past the headers, so a body that stalls is cut too; unref'd, it holds nothing up.
  const timedFetch: typeof fetch = (input, init) => {
    stats.httpRequests++
    const controller = new AbortController()
    setTimeout(
      () => controller.abort(new DOMException('tokend did not answer in time', 'TimeoutError')),
      timeoutMs,
    ).unref()
    init?.signal?.addEventListener('abort', () => controller.abort(init.signal?.reason), { once: true })
    return fetch(input, { ...init, signal: controller.signal })
  }

  const trpc = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url,
          EventSource,
          eventSourceOptions: {
            fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, authorization } }),
          },
        }),
        false: httpBatchLink({
          url,
          fetch: timedFetch,
          maxItems: MAX_BATCH,
          // A batch is one HTTP request: it carries the first of its calls' trace contexts.
          headers: ({ opList }) => {
            const traceparent = opList.find((op) => isTraceparent(op.context.traceparent))?.context.traceparent
            return traceparent ? { authorization, traceparent: traceparent as string } : { authorization }
          },
        }),
      }),
    ],
  })

  const cache = options.cache ? new VerifyCache(options.cache === true ? {} : options.cache) : undefined
  const waiting = new Set<() => void>()
  const stream = cache
    ? followChanges(trpc, cache, logger, () => {
        for (const resolve of waiting) resolve()
      })
    : undefined
  const inflight = new Map<string, { epoch: number; result: Promise<VerifyResult> }>()
  /** Digests of keys with usage credits: every verify of theirs asks tokend (never cached, never shared). */
  const metered = new LRUCache<string, true>({ max: 10_000 })
  const derived = cache
    ? new DerivedTokens(
        options.url,
        (input, init) => {
          stats.jwksFetches++
          return timedFetch(input, init)
        },
        timeoutMs,
      )
    : undefined

  async function callVerify(
    input: RouterInputs['token']['verify'],
    idempotent: boolean,
    traceparent?: string,
  ): Promise<VerifyResult> {
    const context = { traceparent: traceparent ?? activeTraceparent() }
    for (let attempt = 0; ; attempt++) {
      try {
        stats.networkVerifies++
        return await trpc.token.verify.mutate(input, { context })
      } catch (error) {
        const failure = classify(error)
        const retry = failure instanceof TokendUnavailableError && (idempotent || neverSent(error))
        if (!retry || attempt >= retries) throw failure
        await sleep(BACKOFF_MS * 2 ** attempt * (0.5 + Math.random()))
      }
    }
  }

  /**
   * Asks tokend about the key alone (no requirements), so the answer can be cached. The
   * address goes with it: a key bound to networks answers for that address only (and
   * the cache keeps no such answer), so calls join only calls from the same address.
   * `shared`: the answer came from another caller's request.
   */
  async function fetchCacheable(
    digest: string,
    credential: string,
    clientIp: string | undefined,
    traceparent?: string,
  ): Promise<{ answer: VerifyResult; shared: boolean }> {
    const active = cache as VerifyCache
    const epoch = active.epoch
    const flight = clientIp === undefined ? digest : `${digest} ${clientIp}`
    const joined = inflight.get(flight)
    if (joined && joined.epoch === epoch) return { answer: await joined.result, shared: true }
    const input = clientIp === undefined ? { token: credential } : { token: credential, clientIp }
    const result = callVerify(input, true, traceparent).then((answer) => {
      active.store(digest, answer, epoch)
      return answer
    })
    const entry = { epoch, result }
    inflight.set(flight, entry)
    const forget = () => {
      if (inflight.get(flight) === entry) inflight.delete(flight)
    }
    result.then(forget, forget)
    return { answer: await result, shared: false }
  }

  /** Asks tokend with this call's own requirements, limit and cost. */
  function verifyRemote(credential: string, verifyOptions: VerifyOptions): Promise<VerifyResult> {
    const { ratelimit, cost, clientIp, traceparent, ...require } = verifyOptions
    const input = {
      token: credential,
      ...(Object.keys(require).length > 0 ? { require } : {}),
      ...(clientIp !== undefined && { clientIp }),
    }
    if (ratelimit) Object.assign(input, { ratelimit })
    if (cost !== undefined) Object.assign(input, { cost })
    // Counting (a rate limit, credits) makes a verify not idempotent: retried only if never sent.
    const counted = ratelimit !== undefined || cost !== undefined || metered.has(digestKey(credential))
    return callVerify(input, !counted, traceparent)
  }

  /**
   * A derived token while the change stream is ready: its signature and expiry offline,
   * its parent from the local cache — asked of tokend once per parent and scopes, then
   * kept until a change event for that key or its account (or the stream's loss).
   */
  async function verifyDerived(
    credential: string,
    require: Requirements,
    clientIp: string | undefined,
  ): Promise<{ answer: VerifyResult; shared: boolean }> {
    const checked = await (derived as DerivedTokens).check(credential)
    if ('reason' in checked) {
      stats.localRejects++
      return { answer: { valid: false, reason: checked.reason }, shared: false }
    }
    const active = cache as VerifyCache
    const known = active.getParent(checked.cacheKey)
    if (known) {
      stats.offlineVerifies++
      return { answer: applyRequirements(derivedResult(known, checked), require), shared: false }
    }
    const { answer, shared } = await fetchParent(checked, credential, clientIp)
    return { answer: applyRequirements(derivedResult(answer, checked), require), shared }
  }

  /** As `fetchCacheable`: a parent bound to networks answers for this address only, and is not kept. */
  async function fetchParent(
    claims: DerivedClaims,
    credential: string,
    clientIp: string | undefined,
  ): Promise<{ answer: VerifyResult; shared: boolean }> {
    const active = cache as VerifyCache
    const epoch = active.epoch
    const key = clientIp === undefined ? `derived ${claims.cacheKey}` : `derived ${claims.cacheKey} ${clientIp}`
    const joined = inflight.get(key)
    if (joined && joined.epoch === epoch) return { answer: await joined.result, shared: true }
    const input = clientIp === undefined ? { token: credential } : { token: credential, clientIp }
    const result = callVerify(input, true).then((answer) => {
      active.storeParent(claims.cacheKey, { parent: claims.parent, accountId: claims.accountId, result: answer }, epoch)
      return answer
    })
    const entry = { epoch, result }
    inflight.set(key, entry)
    const forget = () => {
      if (inflight.get(key) === entry) inflight.delete(key)
    }
    result.then(forget, forget)
    return { answer: await result, shared: false }
  }

  async function verify(credential: string, verifyOptions: VerifyOptions = {}): Promise<VerifyResult> {
    const { ratelimit, cost, clientIp, traceparent, ...require } = verifyOptions
    const kind = credentialKind(credential, prefix)
    if (kind === 'malformed') {
      stats.localRejects++
      return { valid: false, reason: 'MALFORMED' }
    }
    // Offline only while the stream can tell of the parent's changes; otherwise tokend decides.
    // A parent with usage credits is charged for each verify of its tokens: those always ask.
    if (kind === 'jwt' && cache?.ready && !ratelimit && cost === undefined && isDerivedToken(credential)) {
      const digest = digestKey(credential)
      if (!metered.has(digest)) {
        const { answer, shared } = await verifyDerived(credential, require, clientIp)
        if (!isMetered(answer)) return answer
        metered.set(digest, true)
        // Another caller's answer spent that caller's credit, not this one's.
        if (!shared) return answer
      }
    }
    // Only access keys are cached: their changes are what the stream reports. A rate
    // limit and usage credits are counted by tokend on every request, so those always ask.
    if (cache && kind === 'access_key' && !ratelimit && cost === undefined) {
      const digest = digestKey(credential)
      if (!metered.has(digest)) {
        const hit = cache.get(digest)
        if (hit) {
          stats.cacheHits++
          return applyRequirements(hit, require)
        }
        const { answer, shared } = await fetchCacheable(digest, credential, clientIp, traceparent)
        if (!isMetered(answer)) return applyRequirements(answer, require)
        metered.set(digest, true)
        // Another caller's answer spent that caller's credit, not this one's.
        if (!shared) return applyRequirements(answer, require)
      }
    }
    return verifyRemote(credential, verifyOptions)
  }

  const client: TokendClient = {
    verify,
    async exchange(input) {
      try {
        return await trpc.token.exchange.mutate(input)
      } catch (error) {
        throw classify(error)
      }
    },
    requireAuth: (middlewareOptions) => requireAuth(client, middlewareOptions),
    cacheReady(wait = 5_000) {
      if (!cache) return Promise.resolve(false)
      if (cache.ready) return Promise.resolve(true)
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer)
          waiting.delete(done)
          resolve(cache.ready)
        }
        const timer = setTimeout(done, wait)
        waiting.add(done)
      })
    },
    get cacheActive() {
      return cache?.ready ?? false
    },
    trpc,
    stats,
    close() {
      stream?.stop()
    },
    async ready() {
      try {
        // A malformed token costs tokend nothing, and answers only a caller allowed to verify.
        await callVerify({ token: '-' }, true)
      } catch (error) {
        throw setupError(error, options.url)
      }
    },
    prefix,
    realm: options.realm ?? 'api',
    logger,
    reportFailure(error) {
      const problem = setupError(error, options.url)
      const kind = problem instanceof TokendSetupError ? problem.problem : `refused:${problem.status}`
      if (reported.has(kind)) return
      reported.add(kind)
      logger.warn({ problem: kind }, `${problem.message} (logged once; requests get 503 auth_unavailable)`)
    },
  }
  const reported = new Set<string>()
  return client
}

/** An answer about a key with usage credits (it carries `remaining`): spent per call, never reused. */
function isMetered(result: VerifyResult): boolean {
  return (result as { remaining?: number }).remaining !== undefined
}

/** One JSON line per message on stderr, pino-like, for a client given no logger. */
const stderrLogger: TokendLogger = {
  info: (fields, message) =>
    process.stderr.write(`${JSON.stringify({ level: 'info', name: 'tokend-client', ...fields, msg: message })}\n`),
  warn: (fields, message) =>
    process.stderr.write(`${JSON.stringify({ level: 'warn', name: 'tokend-client', ...fields, msg: message })}\n`),
}

/** Refuses options that could only fail later, at request time, with the option to fix named. */
function checkOptions(options: TokendClientOptions): void {
  const fail = (message: string) => {
    throw new TypeError(`createTokendClient: ${message}`)
  }
  if (typeof options !== 'object' || options === null) fail('give it { url, serviceKey }')
  let url: URL | undefined
  try {
    url = new URL(options.url)
  } catch {
    fail(`url must be tokend's base URL, such as http://127.0.0.1:3000 (got ${JSON.stringify(String(options.url))})`)
  }
  if (url && url.protocol !== 'http:' && url.protocol !== 'https:') fail('url must be an http:// or https:// URL')
  if (url && (url.username || url.password))
    fail('url must not hold a user name or password; the key goes in serviceKey')
  if (typeof options.serviceKey !== 'string' || options.serviceKey.trim() === '') {
    fail("serviceKey is missing: this service's own tokend access key, with the tokend:verify scope")
  }
  if (credentialKind(options.serviceKey, options.prefix ?? 'tk') === 'malformed') {
    fail(`serviceKey is not a ${options.prefix ?? 'tk'}_ access key (check for a typo, quotes or a newline)`)
  }
  for (const name of ['timeoutMs', 'retries'] as const) {
    const value = options[name]
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) fail(`${name} must be a number ≥ 0`)
  }
}

/** Says which of "unreachable", "key rejected" and "key lacks tokend:verify" an error means; other refusals as they are. */
function setupError(error: unknown, url: string): TokendSetupError | TokendRejectedError {
  if (error instanceof TokendRejectedError && error.status !== 401 && error.status !== 403) return error
  if (error instanceof TokendRejectedError && error.status === 403) {
    return new TokendSetupError(
      `the service key may not verify: it lacks the tokend:verify scope (403 ${error.reason ?? 'forbidden'}); issue one with --scope tokend:verify`,
      'missing_scope',
      { cause: error },
    )
  }
  if (error instanceof TokendRejectedError && error.status === 401) {
    return new TokendSetupError(
      `tokend rejected the service key (401 ${error.reason ?? 'invalid_token'}): it is unknown, revoked, expired or disabled; check serviceKey`,
      'key_rejected',
      { cause: error },
    )
  }
  const why = error instanceof Error ? error.message : String(error)
  return new TokendSetupError(
    `tokend is unreachable at ${url} (${why}); check url and that tokend is running`,
    'unreachable',
    {
      cause: error,
    },
  )
}

/**
 * Keeps `cache` in step with tokend's `token.changes`: answering only between a
 * `ready` and the next sign of trouble (an error, a drop, a reconnect after silence),
 * and resubscribing with backoff whenever the subscription ends.
 */
function followChanges(
  trpc: TRPCClient<AppRouter>,
  cache: VerifyCache,
  logger: TokendLogger | undefined,
  onReady: () => void,
): { stop(): void } {
  let stopped = false
  let backoff = 100
  let timer: NodeJS.Timeout | undefined
  let current: { unsubscribe(): void } | undefined

  const subscribe = () => {
    let ended = false
    const end = (error?: unknown) => {
      cache.suspend()
      if (ended || stopped) return
      ended = true
      logger?.warn({ err: describe(error) }, 'tokend change stream ended; local cache off until it is back')
      timer = setTimeout(subscribe, backoff)
      backoff = Math.min(backoff * 2, STREAM_BACKOFF_MAX_MS)
    }
    current = trpc.token.changes.subscribe(undefined, {
      onData(event) {
        if (event.type === 'ready') {
          cache.resume(event.scope)
          backoff = 100
          logger?.info({}, 'tokend change stream ready; local cache on')
          onReady()
        } else if (event.type === 'key') cache.evict(event.digest, event.tokenId)
        else cache.evictAccount(event.accountId)
      },
      onConnectionStateChange(state) {
        if (state.state === 'pending') return
        if (cache.ready) logger?.warn({ err: describe(state.error) }, 'tokend change stream lost; local cache off')
        cache.suspend()
      },
      onError: end,
      onComplete: () => end(),
    })
  }
  subscribe()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
      current?.unsubscribe()
      cache.suspend()
    },
  }
}

/** Maps whatever a call threw to an outage or a refusal; nothing else escapes. */
function classify(error: unknown): TokendUnavailableError | TokendRejectedError {
  const data = error instanceof TRPCClientError ? (error.data as { httpStatus?: number; reason?: string }) : undefined
  const status = data?.httpStatus
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return new TokendRejectedError(`tokend refused the request (${status})`, status, data?.reason, { cause: error })
  }
  const why = status === undefined ? describe(error) : `HTTP ${status}`
  return new TokendUnavailableError(`tokend is unavailable: ${why}`, status, { cause: error })
}

/** True when the connection was refused: the request certainly never reached tokend. */
function neverSent(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if ((cause as { code?: unknown }).code === 'ECONNREFUSED') return true
  }
  return false
}

function describe(error: unknown): string | undefined {
  if (error === undefined || error === null) return undefined
  let message = error instanceof Error ? error.message : String(error)
  if (error instanceof Error && error.cause instanceof Error) message += `: ${describe(error.cause)}`
  return message
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
