import cluster, { type Worker } from 'node:cluster'
import { type Logger, pino } from 'pino'
import { prepareDatabase } from '../app.ts'
import type { Config } from '../config.ts'
import { serveClusterMetrics } from './cluster-metrics.ts'

/** What a worker tells the primary once its app has started (its listener subscribed, its ports bound). */
export const WORKER_READY = 'tokend:worker-ready'

const RESTART_FIRST_MS = 100
const RESTART_MAX_MS = 30_000
/** Crashes further apart than this do not add to the backoff. */
const CRASH_MEMORY_MS = 60_000
/** A worker's own drain takes at most 10 s (app.ts); past this it is killed. */
const DRAIN_LIMIT_MS = 15_000

/**
 * The primary of TOKEND_WORKERS > 1: it serves nothing itself. It starts the embedded
 * database if there is one, migrates and bootstraps once, then forks the workers, which
 * share the HTTP and gRPC ports (node:cluster hands out connections) and nothing else
 * but Postgres. A worker that fails to start stops the whole service (exit 1, its reason
 * on stderr); one that dies later is replaced, with backoff if it keeps dying. SIGTERM
 * or SIGINT drains every worker, then the primary exits 0.
 */
export async function runPrimary(config: Config): Promise<void> {
  const logger = pino({ level: config.LOG_LEVEL }).child({ role: 'primary' })
  let prepared: Awaited<ReturnType<typeof prepareDatabase>>
  try {
    prepared = await prepareDatabase(config, logger)
  } catch (error) {
    process.stderr.write(`tokend: failed to start: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
  const metrics = serveClusterMetrics()
  const env = { DATABASE_URL: prepared.databaseUrl }
  const ready = new Set<Worker>()
  let crashes: number[] = []
  const restarts = new Set<NodeJS.Timeout>()
  let started = false
  let stopping = false

  const fork = () => {
    const worker = cluster.fork(env)
    worker.on('message', (message: { type?: string; url?: string }) => {
      if (message?.type === WORKER_READY) onReady(worker, String(message.url))
      else metrics(worker, message)
    })
  }
  let announceUrl: ((url: string) => void) | undefined
  const allReady = new Promise<string>((resolve) => (announceUrl = resolve))
  const onReady = (worker: Worker, url: string) => {
    ready.add(worker)
    if (started) logger.info({ workerPid: worker.process.pid }, 'worker replaced')
    else if (ready.size === config.TOKEND_WORKERS) announceUrl?.(url)
  }

  cluster.on('exit', (worker, code, signal) => {
    ready.delete(worker)
    if (stopping) return
    if (!started) {
      // Its reason is already on stderr (e.g. a port in use): starting again would not help.
      void stop(1, `a worker failed to start (exit ${code ?? signal})`)
      return
    }
    crashes = [...recentCrashes(crashes, Date.now()), Date.now()]
    const delayMs = restartDelay(crashes.length)
    logger.error({ workerPid: worker.process.pid, code, signal, restartInMs: delayMs }, 'worker died; replacing it')
    const timer = setTimeout(() => {
      restarts.delete(timer)
      if (!stopping) fork()
    }, delayMs)
    restarts.add(timer)
  })

  async function stop(exitCode: number, why: string): Promise<void> {
    if (stopping) return
    stopping = true
    logger.info({ why }, 'shutting down')
    for (const timer of restarts) clearTimeout(timer)
    const workers = Object.values(cluster.workers ?? {}).filter((worker) => worker !== undefined)
    await Promise.all(workers.map((worker) => drain(worker, logger)))
    await prepared.embedded?.stop()
    process.exit(exitCode)
  }
  process.on('SIGTERM', () => void stop(0, 'SIGTERM'))
  process.on('SIGINT', () => void stop(0, 'SIGINT'))

  logger.info({ workers: config.TOKEND_WORKERS }, 'starting workers')
  for (let i = 0; i < config.TOKEND_WORKERS; i++) fork()
  const url = await allReady
  started = true
  logger.info({ workers: config.TOKEND_WORKERS, url }, 'tokend listening')
}

/** The deaths of the last minute, of those at `times`: older ones no longer add to the backoff. */
export function recentCrashes(times: number[], now: number): number[] {
  return times.filter((time) => time >= now - CRASH_MEMORY_MS)
}

/** How long to wait before replacing a worker, the `count`th to die within a minute: 100 ms, doubling, at most 30 s. */
export function restartDelay(count: number): number {
  return Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** Math.max(0, count - 1))
}

/** Asks a worker to drain (SIGTERM: main.ts stops its app), killing it if it takes too long. */
function drain(worker: Worker, logger: Logger): Promise<void> {
  if (worker.isDead()) return Promise.resolve()
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      logger.warn({ workerPid: worker.process.pid }, 'worker did not drain in time; killing it')
      worker.process.kill('SIGKILL')
    }, DRAIN_LIMIT_MS)
    worker.once('exit', () => {
      clearTimeout(force)
      resolve()
    })
    worker.process.kill('SIGTERM')
  })
}
