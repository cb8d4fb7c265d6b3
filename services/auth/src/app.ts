import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { type EmbeddedDatabase, startEmbeddedPostgres } from '@tokend/devdb'
import { createExpressMiddleware } from '@trpc/server/adapters/express'
import { getHTTPStatusCodeFromError } from '@trpc/server/http'
import express from 'express'
import { sql } from 'kysely'
import { type Logger, pino } from 'pino'
import { pinoHttp } from 'pino-http'
import { bootstrap } from './accounts/operator.ts'
import { VerifyCache } from './cache/verify-cache.ts'
import { applyChange } from './changes/change-events.ts'
import { ChangeListener } from './changes/change-listener.ts'
import { streamScope } from './changes/change-stream.ts'
import { ClusterMetricsError, exposition } from './cluster/cluster-metrics.ts'
import type { Config } from './config.ts'
import { consoleHttp } from './console/console-http.ts'
import { createContext } from './context.ts'
import { CreditLedger } from './credits/credit-ledger.ts'
import { createDb, type Db, migrateToLatest, withStartupLock } from './db/database.ts'
import type { Deps } from './deps.ts'
import { withForwardAuth } from './edge/forward-auth.ts'
import { introspection } from './edge/introspect.ts'
import { UnauthenticatedError } from './errors.ts'
import { type GrpcServer, startGrpcServer } from './grpc/grpc-server.ts'
import { TRPC_HEADERS, withFastVerify } from './http/fast-verify.ts'
import { answerUnexpected, reportError } from './http/report.ts'
import { compileTrust, requestId, type Trust } from './http/request-meta.ts'
import { API_HEADERS, openApiDocument, REST_BASE, restApi, sendJson } from './http/rest.ts'
import { Metrics } from './metrics/metrics.ts'
import { createMailer } from './notify/mailer.ts'
import { RateLimiter } from './ratelimit/rate-limiter.ts'
import { ReminderScheduler } from './reminders/reminder-scheduler.ts'
import { appRouter } from './router.ts'
import type { JwtRecord } from './sessions/jwt.ts'
import { deleteExpiredSessions } from './sessions/session.repository.ts'
import { ensureSigningKey, SigningKeys } from './sessions/signing-keys.ts'
import { sweepAttempts } from './sessions/throttle.ts'
import { tracing } from './telemetry/hooks.ts'
import { CallerKeys, KeyDigests } from './tokens/caller-keys.ts'
import { KeyLoader } from './tokens/key-loader.ts'
import { PartnerKeys, secretScanningHttp } from './tokens/secret-scanning.ts'
import { UsageRecorder } from './tokens/usage.ts'
import { errorHeaders, errorShape, toTRPCError } from './trpc.ts'
import { PasswordHasher } from './users/passwords.ts'

export interface AppOptions {
  config: Config
  logger?: Logger
  /** Where the bootstrap key is shown once; standard output by default. */
  announceBootstrapKey?: (token: string) => void
  /** Test-only: the clock (epoch ms) that usage-credit refills follow; Date.now by default. */
  clock?: () => number
  /**
   * A database that the primary of a cluster (cluster/primary.ts) has already started,
   * migrated and bootstrapped: a worker only connects to it.
   */
  prepared?: PreparedDatabase
}

export interface PreparedDatabase {
  databaseUrl: string
  /** Set when this process started the embedded cluster, and must stop it. */
  embedded?: EmbeddedDatabase
}

export interface App {
  /** Starts Postgres (embedded when DATABASE_URL is unset), migrates, bootstraps, listens. */
  start(): Promise<{ url: string }>
  /** Stops accepting requests, drains the ones in flight, then closes the database. */
  stop(): Promise<void>
  readonly deps: Deps
  /**
   * For the process's last-resort handlers (main.ts): an error that escaped every
   * request's own handling is logged and counted, and the process carries on.
   */
  unexpected(error: unknown, origin: string): void
}

const SHUTDOWN_GRACE_MS = 10_000

export function createApp(options: AppOptions): App {
  const { config } = options
  const logger =
    options.logger ??
    pino({
      level: config.LOG_LEVEL,
      // Credentials never reach the log, whatever logs a request.
      redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]'],
    })
  const cacheOptions = {
    maxEntries: config.TOKEND_CACHE_MAX_ENTRIES,
    ttlMs: config.TOKEND_CACHE_TTL_MS,
    negativeTtlMs: config.TOKEND_NEGATIVE_CACHE_TTL_MS,
  }
  const cache = new VerifyCache(cacheOptions)
  const jwtCache = new VerifyCache<JwtRecord>(cacheOptions)
  const passwords = new PasswordHasher({
    memoryKib: config.TOKEND_ARGON2_MEMORY_KIB,
    timeCost: config.TOKEND_ARGON2_TIME_COST,
    concurrency: config.TOKEND_PASSWORD_HASH_CONCURRENCY,
  })
  let embedded: EmbeddedDatabase | undefined
  let server: Server | undefined
  let grpcServer: GrpcServer | undefined
  let deps: Deps | undefined
  let sweeper: NodeJS.Timeout | undefined

  async function start(): Promise<{ url: string }> {
    const prepared = options.prepared ?? (await prepareDatabase(config, logger, options.announceBootstrapKey))
    embedded = prepared.embedded
    const { databaseUrl } = prepared
    const { db, pool } = createDb(databaseUrl, config.DATABASE_POOL_SIZE, (error) =>
      logger.warn({ err: error }, 'idle database connection failed'),
    )
    const changes = new ChangeListener({
      databaseUrl,
      logger,
      heartbeatMs: config.TOKEND_LISTENER_HEARTBEAT_MS,
      heartbeatTimeoutMs: config.TOKEND_LISTENER_TIMEOUT_MS,
    })
    const signingKeys = new SigningKeys(db, logger)
    const keys = new KeyLoader(pool)
    const metrics = new Metrics({ cache, keys, changes, pool })
    const credits = new CreditLedger({ pool, logger, ...(options.clock && { clock: options.clock }) })
    const targets = { cache, jwtCache, signingKeys, credits }
    changes.on('change', (event) => {
      void applyChange(targets, event)
      metrics.invalidated(event.sentAt)
    })
    // Fail safe: while events may be missed, nothing is answered from memory.
    changes.on('state', (state) => {
      // Leases taken while events could be missed may be of a replaced budget: all go back.
      void credits.releaseAll()
      if (state !== 'subscribed') {
        cache.suspend()
        jwtCache.suspend()
        return
      }
      cache.resume()
      jwtCache.resume()
      // A rotation announced while the channel was down was missed.
      void signingKeys.refresh()
    })
    const ratelimits = new RateLimiter({ db, logger })
    const usage = new UsageRecorder({
      db,
      logger,
      flushMs: config.TOKEND_LAST_USED_FLUSH_MS,
      enabled: config.TOKEND_TRACK_LAST_USED,
    })
    const mailer = createMailer({ smtpUrl: config.SMTP_URL, from: config.TOKEND_MAIL_FROM, logger })
    const unusedAfter = config.TOKEND_DISABLE_UNUSED_AFTER
    const reminders = new ReminderScheduler({
      db,
      mailer,
      logger,
      intervalMs: config.TOKEND_REMINDER_INTERVAL_MS,
      unused:
        unusedAfter === undefined
          ? undefined
          : {
              policy: { afterDays: unusedAfter, warningDays: config.TOKEND_DISABLE_UNUSED_WARNING },
              changes: targets,
            },
    })
    deps = {
      config,
      db,
      pool,
      keys,
      cache,
      callerKeys: new CallerKeys(),
      keyDigests: new KeyDigests(),
      jwtCache,
      signingKeys,
      passwords,
      logger,
      changes,
      ratelimits,
      credits,
      usage,
      mailer,
      metrics,
      reminders,
    }

    await signingKeys.load()
    await passwords.warm()

    await changes.start()
    ratelimits.start()
    credits.start()
    usage.start()
    reminders.start()
    sweeper = setInterval(() => void sweep(db, config.TOKEND_LOGIN_WINDOW_S, logger), SWEEP_INTERVAL_MS)
    sweeper.unref()
    const partnerKeys = PartnerKeys.fromConfig(config, logger)
    await partnerKeys?.check()
    const trust = compileTrust(config.TOKEND_TRUST_PROXY)
    const app = buildHttpApp(deps, trust, partnerKeys)
    const handler = guarded(deps, withForwardAuth(deps, trust, withFastVerify(deps, trust, app)))
    const listening = createServer(tracing ? tracing.serve(handler) : handler)
    server = await new Promise<Server>((resolve, reject) => {
      listening.once('error', (error) =>
        reject(new Error(`cannot listen on ${config.HOST}:${config.PORT}: ${error.message}`)),
      )
      listening.listen(config.PORT, config.HOST, () => resolve(listening))
    })
    server.keepAliveTimeout = 65_000
    if (config.TOKEND_GRPC_PORT !== 0) {
      grpcServer = await startGrpcServer(deps, trust, config.HOST, config.TOKEND_GRPC_PORT)
      logger.info({ address: grpcServer.address }, 'tokend gRPC listening')
    }
    const { port } = server.address() as AddressInfo
    // On every address (0.0.0.0, ::), the URL to give is this host's own name for itself.
    const wildcard = config.HOST === '0.0.0.0' || config.HOST === '::'
    const host = wildcard ? 'localhost' : config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST
    const url = `http://${host}:${port}`
    logger.info({ listen: `${config.HOST}:${port}`, url }, 'tokend listening')
    return { url }
  }

  async function stop(): Promise<void> {
    // Ends the change streams first: they never finish by themselves, and their clients
    // must flush and reconnect elsewhere anyway. Verifies meanwhile go to the database.
    await deps?.changes.stop()
    clearInterval(sweeper)
    const grpcStopped = grpcServer?.stop(SHUTDOWN_GRACE_MS)
    grpcServer = undefined
    if (server) {
      const closing = new Promise<void>((resolve) => server?.close(() => resolve()))
      server.closeIdleConnections()
      const force = setTimeout(() => server?.closeAllConnections(), SHUTDOWN_GRACE_MS)
      await closing
      clearTimeout(force)
      server = undefined
    }
    await grpcStopped
    await deps?.reminders.stop()
    await deps?.usage.stop()
    await deps?.credits.stop()
    await deps?.ratelimits.stop()
    // Only once the requests in flight are done: some may be waiting on a hash.
    passwords.stop()
    await deps?.db.destroy()
    await embedded?.stop()
    embedded = undefined
  }

  return {
    start,
    stop,
    unexpected(error, origin) {
      deps?.metrics.unexpected('process')
      logger.error({ err: error, origin }, 'unexpected error; tokend carries on')
    },
    get deps() {
      if (!deps) throw new Error('the app has not started')
      return deps
    },
  }
}

/**
 * Starts the embedded cluster when DATABASE_URL is unset, then migrates and bootstraps
 * under the start-up lock (so replicas starting together do it once). Run by `start()`,
 * or once by a cluster's primary before it forks its workers.
 */
export async function prepareDatabase(
  config: Config,
  logger: Logger,
  announceBootstrapKey: (token: string) => void = printBootstrapKey,
): Promise<PreparedDatabase> {
  let embedded: EmbeddedDatabase | undefined
  let databaseUrl = config.DATABASE_URL
  let bootstrapFile = config.TOKEND_BOOTSTRAP_TOKEN_FILE
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres({
      dataDir: config.TOKEND_DATA_DIR,
      port: config.TOKEND_EMBEDDED_PG_PORT,
      portVariable: 'TOKEND_EMBEDDED_PG_PORT',
      legacyPassword: 'tokend-embedded',
      logger,
    })
    databaseUrl = embedded.url
    // The embedded default keeps the key next to the data it unlocks, for the README walk-through.
    bootstrapFile ??= join(config.TOKEND_DATA_DIR, 'bootstrap.key')
  }
  try {
    const created = await withStartupLock(databaseUrl, async (conn) => {
      await migrateToLatest(conn)
      await ensureSigningKey(conn)
      return bootstrap(conn, config.TOKEND_TOKEN_PREFIX, bootstrapFile)
    })
    // Shown once, right after the commit, before anything else can fail.
    if (created) {
      logger.info({ accountId: created.accountId }, 'bootstrapped the operator account and its admin key')
      announceBootstrapKey(created.token)
    }
  } catch (error) {
    await embedded?.stop()
    throw error
  }
  return { databaseUrl, embedded }
}

/**
 * The last line of defence for a request: whatever its handler throws, the request is
 * answered 500 with its request id (logged and counted), and the process stays up.
 */
function guarded(deps: Deps, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse) => {
    try {
      handler(req, res)
    } catch (error) {
      answerUnexpected(deps, error, req, res)
    }
  }
}

function buildHttpApp(deps: Deps, trust: Trust, partnerKeys: PartnerKeys | undefined): express.Express {
  const { logger } = deps
  const app = express()
  app.disable('x-powered-by')
  app.disable('etag')
  app.set('trust proxy', trust)
  app.use(
    pinoHttp({
      logger,
      genReqId: requestId,
      // Successful verifies are the bulk of all traffic: logged at debug, as on the fast path.
      customLogLevel: (req, res, error) =>
        error || res.statusCode >= 500 ? 'error' : res.statusCode === 200 && isVerify(req.url) ? 'debug' : 'info',
      // Only the path is logged: query strings may carry input, and input may carry keys.
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          path: req.url.split('?')[0],
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      autoLogging: { ignore: (req) => ['/healthz', '/readyz', '/metrics'].includes(req.url ?? '') },
    }),
  )
  app.use((_req, res, next) => {
    res.set(API_HEADERS)
    next()
  })

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' })
  })
  app.get('/metrics', async (_req, res) => {
    // A cluster's workers may be too busy to answer the primary in time: a failed scrape, not
    // a bug (503). Anything else is one, and goes to the error handler (500).
    const text = await exposition(deps.metrics.registry).catch((error: unknown) => {
      if (!(error instanceof ClusterMetricsError)) throw error
      deps.logger.warn({ err: error }, 'metrics unavailable')
    })
    if (text === undefined) res.status(503).json({ error: { code: 'unavailable', message: 'metrics unavailable' } })
    else res.type(deps.metrics.registry.contentType).send(text)
  })
  app.get('/readyz', async (_req, res) => {
    const database = await ping(deps.db)
    const changes = deps.changes.state
    const ready = database && changes === 'subscribed'
    res
      .status(ready ? 200 : 503)
      .json({ status: ready ? 'ok' : 'unavailable', database: database ? 'ok' : 'down', changes })
  })

  // Public halves of the signing keys, for anyone verifying tokend's JWTs offline.
  app.get('/.well-known/jwks.json', (_req, res) => {
    res.setHeader('cache-control', 'public, max-age=60')
    res.json(deps.signingKeys.jwks())
  })

  // The web console (console/): its files, its sign-in, and its session cookie on /trpc.
  app.use(consoleHttp(deps, trust))
  app.use('/trpc/token.changes', (req, res, next) => void refuseStream(deps, trust, req, res, next))
  app.use(
    '/trpc',
    createExpressMiddleware({
      router: appRouter,
      maxBodySize: 1024 * 1024,
      createContext: ({ req }) => createContext(deps, req, { id: String(req.id), trust }),
      responseMeta: ({ errors }) => ({ headers: errorHeaders(errors) }),
      onError({ error, path, req }) {
        reportError(deps, error, { path, requestId: String(req.id), log: (req as { log?: Logger }).log })
      },
    }),
  )

  // The same procedures as REST, for callers without a tRPC client (http/rest.ts).
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument())
  })
  app.use(REST_BASE, restApi(deps, trust))
  app.use('/oauth', introspection(deps, trust))
  // GitHub's secret scanning partner reports (tokens/secret-scanning.ts), when keys are configured.
  app.use(secretScanningHttp(deps, trust, partnerKeys))

  app.use((_req, res) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such route' } })
  })
  app.use((error: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    answerUnexpected(deps, error, req, res)
  })
  return app
}

function isVerify(url: string | undefined): boolean {
  return url === '/trpc/token.verify' || url === `${REST_BASE}/tokens/verify`
}

/**
 * tRPC starts an event stream before a subscription's procedure runs, so it can only
 * refuse a caller inside the stream, with status 200. The change stream's callers are
 * therefore checked first, by the same rule the procedure applies (`streamScope`), and
 * refused with a real 401 or 403 in tRPC's error shape.
 */
async function refuseStream(
  deps: Deps,
  trust: Trust,
  req: express.Request,
  res: express.Response,
  next: express.NextFunction,
): Promise<void> {
  try {
    const caller = await createContext(deps, req, { id: String(req.id), trust }).authenticate()
    if (!caller) throw new UnauthenticatedError()
    streamScope(caller)
    next()
  } catch (cause) {
    const error = toTRPCError(cause)
    reportError(deps, error, { path: 'token.changes', requestId: String(req.id), log: req.log })
    const body = { error: errorShape(error, 'token.changes', 'subscription', undefined) }
    sendJson(res, getHTTPStatusCodeFromError(error), body, { ...TRPC_HEADERS, ...errorHeaders([error]) })
  }
}

const SWEEP_INTERVAL_MS = 10 * 60_000

/** Drops what has outlived its use: finished throttle windows, sessions expired a day ago. */
async function sweep(db: Db, windowS: number, logger: Logger): Promise<void> {
  try {
    await sweepAttempts(db, windowS)
    await deleteExpiredSessions(db, new Date(Date.now() - 86_400_000))
  } catch (error) {
    logger.warn({ err: error }, 'sweep failed')
  }
}

async function ping(db: Db): Promise<boolean> {
  try {
    await sql`select 1`.execute(db)
    return true
  } catch {
    return false
  }
}

function printBootstrapKey(token: string): void {
  process.stdout.write(
    [
      '',
      '  tokend bootstrap: the operator admin key (shown once; store it in a secret manager now)',
      '',
      `    ${token}`,
      '',
      '',
    ].join('\n'),
  )
}
