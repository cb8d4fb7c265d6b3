import cluster from 'node:cluster'
import { createApp } from './app.ts'
import { shareMetrics } from './cluster/cluster-metrics.ts'
import { runPrimary, WORKER_READY } from './cluster/primary.ts'
import { ConfigError, loadConfig } from './config.ts'
import { setTracing, tracing } from './telemetry/hooks.ts'

let config: ReturnType<typeof loadConfig>
try {
  // A cluster's workers read the same environment: its warnings were the primary's to give.
  config = loadConfig(process.env, cluster.isWorker ? () => {} : undefined)
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  process.stderr.write(`tokend: ${error.message}\n`)
  process.exit(1)
}

if (cluster.isPrimary && config.TOKEND_WORKERS > 1) {
  await runPrimary(config)
} else {
  await serve()
}

async function serve(): Promise<void> {
  // Only then is OpenTelemetry loaded at all (telemetry/tracing.ts).
  if (config.OTEL_EXPORTER_OTLP_ENDPOINT) {
    const { startTracing } = await import('./telemetry/tracing.ts')
    setTracing(await startTracing())
  }
  // In a cluster worker the primary has started, migrated and bootstrapped the database (DATABASE_URL).
  const prepared = cluster.isWorker && config.DATABASE_URL ? { databaseUrl: config.DATABASE_URL } : undefined
  const app = createApp({ config, prepared })
  // No request can stop the service: what escapes every handler is logged and counted, never an exit.
  process.on('unhandledRejection', (error) => app.unexpected(error, 'unhandledRejection'))
  process.on('uncaughtException', (error) => app.unexpected(error, 'uncaughtException'))
  let stopping = false

  async function shutdown(signal: string): Promise<void> {
    if (stopping) return
    stopping = true
    app.deps.logger.info({ signal }, 'shutting down')
    await app.stop()
    // What is still buffered goes to the collector, if it answers within its exporter's timeout.
    await tracing?.shutdown().catch((error: unknown) => app.deps.logger.warn({ err: error }, 'traces not sent'))
    process.exit(0)
  }

  try {
    const { url } = await app.start()
    if (cluster.isWorker) {
      shareMetrics(app.deps.metrics.registry)
      process.send?.({ type: WORKER_READY, url })
    }
  } catch (error) {
    process.stderr.write(`tokend: failed to start: ${error instanceof Error ? error.message : String(error)}\n`)
    await app.stop().catch(() => {})
    process.exit(1)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}
