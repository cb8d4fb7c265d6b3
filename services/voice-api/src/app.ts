import { randomUUID } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createTokendClient, type TokendClient } from '@tokend/client'
import { type EmbeddedDatabase, startEmbeddedPostgres } from '@tokend/devdb'
import express from 'express'
import { sql } from 'kysely'
import { type Logger, pino } from 'pino'
import { pinoHttp } from 'pino-http'
import type { Config } from './config.ts'
import { createDb, type Db, isDatabaseUnavailable, migrateToLatest } from './db/database.ts'
import { HttpError } from './errors.ts'
import { recordingRoutes } from './recordings/recording.routes.ts'

export interface AppOptions {
  config: Config
  logger?: Logger
}

export interface App {
  /** Starts Postgres (embedded when DATABASE_URL is unset), migrates, listens. */
  start(): Promise<{ url: string }>
  /** Stops accepting requests, drains the ones in flight, then closes tokend's stream and the database. */
  stop(): Promise<void>
  readonly logger: Logger
}

const REQUEST_ID = /^[\w.:-]{1,128}$/
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
  let embedded: EmbeddedDatabase | undefined
  let db: Db | undefined
  let tokend: TokendClient | undefined
  let server: Server | undefined

  async function start(): Promise<{ url: string }> {
    let databaseUrl = config.DATABASE_URL
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres({
        dataDir: config.VOICE_API_DATA_DIR,
        port: config.VOICE_API_EMBEDDED_PG_PORT,
        portVariable: 'VOICE_API_EMBEDDED_PG_PORT',
        legacyPassword: 'voice-api-embedded',
        logger,
      })
      databaseUrl = embedded.url
    }
    db = createDb(databaseUrl, config.DATABASE_POOL_SIZE, (error) =>
      logger.warn({ err: error }, 'idle database connection failed'),
    )
    await migrateToLatest(db)
    tokend = createTokendClient({
      url: config.TOKEND_URL,
      serviceKey: config.TOKEND_SERVICE_KEY,
      timeoutMs: config.TOKEND_TIMEOUT_MS,
      prefix: config.TOKEND_TOKEN_PREFIX,
      cache: config.TOKEND_CACHE === 'on',
      realm: 'voice-api',
      logger,
    })
    const app = buildHttpApp(db, tokend, logger)
    server = await new Promise<Server>((resolve) => {
      const listening = app.listen(config.PORT, config.HOST, () => resolve(listening))
    })
    server.keepAliveTimeout = 65_000
    const { port } = server.address() as AddressInfo
    const url = `http://127.0.0.1:${port}`
    logger.info({ url, tokend: config.TOKEND_URL, cache: config.TOKEND_CACHE }, 'voice-api listening')
    return { url }
  }

  async function stop(): Promise<void> {
    if (server) {
      const closing = new Promise<void>((resolve) => server?.close(() => resolve()))
      server.closeIdleConnections()
      const force = setTimeout(() => server?.closeAllConnections(), SHUTDOWN_GRACE_MS)
      await closing
      clearTimeout(force)
      server = undefined
    }
    tokend?.close()
    await db?.destroy()
    await embedded?.stop()
    embedded = undefined
  }

  return { start, stop, logger }
}

function buildHttpApp(db: Db, tokend: TokendClient, logger: Logger): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('trust proxy', 'loopback')
  app.use(
    pinoHttp({
      logger,
      genReqId(req, res) {
        const given = req.headers['x-request-id']
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
        res.setHeader('x-request-id', id)
        return id
      },
      // Only the path is logged: ?accesskey= and ?token= carry credentials.
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          path: req.url.split('?')[0],
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' },
    }),
  )

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' })
  })
  app.get('/readyz', async (_req, res) => {
    const database = await sql`select 1`.execute(db).then(
      () => true,
      () => false,
    )
    res.status(database ? 200 : 503).json({ status: database ? 'ok' : 'unavailable', tokendCache: tokend.cacheActive })
  })

  app.use('/v1', recordingRoutes(db, tokend))

  app.use((_req, res) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such route' } })
  })
  app.use((error: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const answer = toHttpError(error)
    if (answer.status >= 500) (req.log ?? logger).error({ err: error }, 'request failed')
    const body: Record<string, unknown> = { code: answer.code, message: answer.message }
    if (answer.issues) body.issues = answer.issues
    res.status(answer.status).json({ error: body })
  })
  return app
}

/** The one place errors become answers: bad input is 400, a database outage 503, the rest 500. */
function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error
  // body-parser's errors (bad JSON, too large, wrong charset) carry a 4xx status.
  const status = (error as { status?: unknown })?.status
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const tooLarge = status === 413
    return new HttpError(tooLarge ? 413 : 400, tooLarge ? 'payload_too_large' : 'invalid_input', 'invalid request body')
  }
  if (isDatabaseUnavailable(error)) return new HttpError(503, 'unavailable', 'the database is unavailable; try again')
  return new HttpError(500, 'internal', 'internal error')
}
