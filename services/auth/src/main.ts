import { createApp } from './app.ts'
import { ConfigError, loadConfig } from './config.ts'

let config: ReturnType<typeof loadConfig>
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  process.stderr.write(`tokend: ${error.message}\n`)
  process.exit(1)
}

const app = createApp({ config })
// No request can stop the service: what escapes every handler is logged and counted, never an exit.
process.on('unhandledRejection', (error) => app.unexpected(error, 'unhandledRejection'))
process.on('uncaughtException', (error) => app.unexpected(error, 'uncaughtException'))
let stopping = false

async function shutdown(signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  app.deps.logger.info({ signal }, 'shutting down')
  await app.stop()
  process.exit(0)
}

try {
  await app.start()
} catch (error) {
  process.stderr.write(`tokend: failed to start: ${error instanceof Error ? error.message : String(error)}\n`)
  await app.stop().catch(() => {})
  process.exit(1)
}
process.on('SIGTERM', () => void shutdown('SIGTERM'))
process.on('SIGINT', () => void shutdown('SIGINT'))
