import { freshDatabase } from './index.ts'
import { type ServiceProcess, startTokendProcess } from './process.ts'

export interface RunningTokend {
  process: ServiceProcess
  url: string
  databaseUrl: string
  /** The operator account's admin key, printed once by the first start. */
  bootstrapKey: string
  /** Lines of tokend's log that record a `token.verify` request (one per HTTP request; tokend logs at debug here). */
  verifyRequests(): number
  /** Stops the process (SIGKILL by default: an outage, not a drain), keeping the database. */
  halt(signal?: NodeJS.Signals): Promise<void>
  /** Starts the process again on the same port after `halt`. */
  resume(): Promise<void>
  stop(): Promise<void>
}

/**
 * Runs tokend as a real process on a fresh database of the test cluster (or on
 * `database`, e.g. for a second replica) and hands back its bootstrap key.
 */
export async function startTokend(
  env: Record<string, string> = {},
  database?: { url: string; bootstrapKey: string },
): Promise<RunningTokend> {
  const owned = database ? undefined : await freshDatabase()
  const databaseUrl = database?.url ?? (owned as { url: string }).url
  // At debug, tokend also logs the verify requests its fast path answers.
  env = { LOG_LEVEL: 'debug', ...env }
  let running = await startTokendProcess({ DATABASE_URL: databaseUrl, PORT: '0', ...env })
  const bootstrapKey = database?.bootstrapKey ?? /\b(tk_live_[0-9A-Za-z]{49})\b/.exec(running.output())?.[1]
  if (!bootstrapKey) throw new Error(`tokend printed no bootstrap key:\n${running.output()}`)
  let earlier = ''
  const url = running.url
  return {
    get process() {
      return running
    },
    url,
    databaseUrl,
    bootstrapKey,
    verifyRequests: () => (earlier + running.output()).match(/"path":"\/trpc\/[^"]*token\.verify/g)?.length ?? 0,
    async halt(signal = 'SIGKILL') {
      await running.stop(signal)
    },
    async resume() {
      earlier += running.output()
      running = await startTokendProcess({ DATABASE_URL: databaseUrl, ...env, PORT: new URL(url).port })
    },
    async stop() {
      await running.stop()
      await owned?.drop()
    },
  }
}
