import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { type ClusterLogger, EmbeddedPostgresError, prepareCluster } from './cluster.ts'

export interface EmbeddedDatabase {
  url: string
  stop(): Promise<void>
}

/**
 * Runs a real Postgres for a service started without DATABASE_URL: its cluster in
 * `dataDir/pg`, on loopback only, with a superuser password generated for this data
 * directory and kept in `dataDir/postgres.password` (mode 0600), so no other local user
 * can log in with a well-known one. Data survives a restart; a server left running by a
 * killed run of the same data directory is taken over, and anything else on the port is
 * refused with one line naming `portVariable`.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string
  port: number
  /** The setting that chose `port`, named when the port is taken. */
  portVariable?: string
  /** The constant password this service's clusters had before; replaced on first start. */
  legacyPassword?: string
  logger: ClusterLogger
}): Promise<EmbeddedDatabase> {
  const { dataDir, port, logger } = options
  // Others may pass through (as root, the postgres user must reach pg/) but not list it;
  // the key and password files in it are 0600.
  await mkdir(dataDir, { recursive: true, mode: 0o711 })
  const passwordFile = join(dataDir, 'postgres.password')
  const clusterDir = join(dataDir, 'pg')
  let password = (await readFile(passwordFile, 'utf8').catch(() => '')).trim()
  const legacy = !password && existsSync(join(clusterDir, 'PG_VERSION')) ? options.legacyPassword : undefined
  if (!password) {
    password = randomBytes(24).toString('base64url')
    // Written before the cluster exists, so the two never disagree.
    if (!legacy) await writeFile(passwordFile, `${password}\n`, { mode: 0o600, flag: 'wx' })
  }
  const cluster = await prepareCluster({
    dir: clusterDir,
    port,
    password: legacy ?? password,
    settings: ['max_connections=200'],
    portVariable: options.portVariable,
    logger,
  })
  await cluster.start()
  if (legacy) {
    try {
      await setPassword(cluster.url, password)
      await writeFile(passwordFile, `${password}\n`, { mode: 0o600, flag: 'wx' })
    } catch (error) {
      await cluster.stop()
      throw new EmbeddedPostgresError(
        `could not give the embedded postgres in ${clusterDir} its own password: ${(error as Error).message}`,
      )
    }
    logger.info({ passwordFile }, 'embedded postgres: replaced the old constant password with a generated one')
  }
  logger.info({ dataDirectory: cluster.dataDirectory, port }, 'embedded postgres started')
  return { url: cluster.url.replace(/:[^:@/]*@/, `:${encodeURIComponent(password)}@`), stop: () => cluster.stop() }
}

async function setPassword(url: string, password: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`alter role postgres password ${client.escapeLiteral(password)}`)
  } finally {
    await client.end()
  }
}
