import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { prepareCluster, removeCluster } from '@tokend/devdb'
import pg from 'pg'

export interface RunningPostgres {
  /** Superuser URL of the cluster's `postgres` database. */
  url: string
  stop(): Promise<void>
  start(): Promise<void>
}

/** Binds port 0 to let the kernel pick a free loopback port. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/**
 * A throwaway embedded Postgres cluster in a temporary folder, on a free port.
 * `stop()`/`start()` keep the data so tests can simulate an outage.
 */
export async function startEmbeddedPostgres(): Promise<RunningPostgres & { destroy(): Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), 'tokend-pg-'))
  await chmod(home, 0o755) // as root, Postgres runs as the postgres user, who must reach pg/ in it
  const cluster = await prepareCluster({
    dir: join(home, 'pg'),
    port: await freePort(),
    password: 'password',
    durable: false,
    settings: ['max_connections=300'],
  })
  await cluster.start()
  return {
    url: cluster.url,
    start: () => cluster.start(),
    stop: () => cluster.stop(),
    async destroy() {
      await cluster.stop()
      await removeCluster(join(home, 'pg'))
      await rm(home, { recursive: true, force: true })
    },
  }
}

/** Creates an empty database on the cluster at `adminUrl`; `drop()` removes it. */
export async function createTestDatabase(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tokend_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`))
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      await withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`))
    },
  }
}

/** One query on its own connection to `url`: the rows. */
export async function query<T extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  return withClient(url, async (client) => (await client.query<T>(text, values)).rows)
}

async function withClient<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await run(client)
  } finally {
    await client.end()
  }
}
