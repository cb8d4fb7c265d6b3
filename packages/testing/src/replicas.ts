import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestDatabase, freePort } from './postgres.ts'
import { type ServiceProcess, startTokendProcess } from './process.ts'

export interface Replicas {
  replicas: ServiceProcess[]
  databaseUrl: string
  /** The operator's bootstrap key, read from the file the one bootstrapping replica wrote. */
  bootstrapKey: string
  stop(): Promise<void>
}

/**
 * Starts `count` tokend processes at the same moment against one fresh database of
 * the cluster at `adminUrl`, each on its own loopback port, as replicas behind a load
 * balancer would run.
 */
export async function startReplicas(
  adminUrl: string,
  count: number,
  env: Record<string, string> = {},
): Promise<Replicas> {
  const database = await createTestDatabase(adminUrl)
  const dir = await mkdtemp(join(tmpdir(), 'tokend-replicas-'))
  const keyFile = join(dir, 'bootstrap.key')
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()))
  const started = await Promise.allSettled(
    ports.map((port) =>
      startTokendProcess({
        DATABASE_URL: database.url,
        PORT: String(port),
        TOKEND_BOOTSTRAP_TOKEN_FILE: keyFile,
        ...env,
      }),
    ),
  )
  const replicas = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
  const stop = async () => {
    await Promise.all(replicas.map((replica) => replica.stop('SIGKILL')))
    await database.drop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
  const failed = started.find((result) => result.status === 'rejected')
  if (failed) {
    await stop()
    throw (failed as PromiseRejectedResult).reason
  }
  return { replicas, databaseUrl: database.url, bootstrapKey: (await readFile(keyFile, 'utf8')).trim(), stop }
}
