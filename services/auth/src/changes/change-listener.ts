import { EventEmitter } from 'node:events'
import pg from 'pg'
import type { Logger } from 'pino'
import { CHANGES_CHANNEL, type ChangeEvent, decodeChange } from './change-events.ts'

export type ChannelState = 'connecting' | 'subscribed' | 'lost'

export interface ChangeListenerOptions {
  databaseUrl: string
  logger: Logger
  /** How often the connection proves it is alive. */
  heartbeatMs: number
  /** How long a heartbeat may take before the connection counts as half-open. */
  heartbeatTimeoutMs: number
}

const MAX_BACKOFF_MS = 2_000

/**
 * Holds one dedicated connection (never one from the pool) that LISTENs for change
 * events, and says so whenever its state changes. Any doubt about the connection —
 * an error, an end, a heartbeat that does not come back in time — is reported as
 * `lost` at once, then the listener reconnects with backoff until it is `subscribed`
 * again. Consumers must treat everything between `lost` and `subscribed` as unseen.
 *
 * Events: `change` (ChangeEvent), `state` (ChannelState).
 */
export class ChangeListener extends EventEmitter<{ change: [ChangeEvent]; state: [ChannelState] }> {
  #state: ChannelState = 'connecting'
  #stopped = false
  #client: pg.Client | undefined
  #running: Promise<void> | undefined
  readonly #options: ChangeListenerOptions

  constructor(options: ChangeListenerOptions) {
    super()
    this.#options = options
  }

  get state(): ChannelState {
    return this.#state
  }

  /** Starts listening; resolves once subscribed for the first time. */
  start(): Promise<void> {
    const subscribed = new Promise<void>((resolve) => {
      const onState = (state: ChannelState) => {
        if (state !== 'subscribed') return
        this.off('state', onState)
        resolve()
      }
      this.on('state', onState)
    })
    this.#running = this.#run()
    return subscribed
  }

  /** Stops listening. Says `lost` first, so change streams end and caches stop trusting. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#drop()
    this.#setState('lost')
    await this.#running
  }

  async #run(): Promise<void> {
    let backoff = 100
    while (!this.#stopped) {
      try {
        await this.#listen()
        backoff = 100
      } catch (error) {
        if (!this.#stopped) this.#options.logger.warn({ err: error }, 'change channel failed')
      } finally {
        this.#drop()
        if (!this.#stopped) this.#setState('lost')
      }
      if (this.#stopped) break
      await sleep(backoff)
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)
    }
  }

  /** One connection's life: connect, LISTEN, then heartbeat until something fails. */
  async #listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#options.databaseUrl,
      application_name: 'tokend-listener',
      connectionTimeoutMillis: this.#options.heartbeatTimeoutMs,
      keepAlive: true,
    })
    this.#client = client
    const ended = new Promise<never>((_, reject) => {
      client.on('error', reject)
      client.on('end', () => reject(new Error('change channel connection ended')))
    })
    ended.catch(() => {})
    client.on('notification', (message) => {
      const event = decodeChange(message.payload)
      if (event) this.emit('change', event)
      else this.#options.logger.warn({ channel: message.channel }, 'ignored an unreadable change event')
    })
    // pg never settles connect() when the client is ended while connecting (as stop()
    // does): the connection's end settles it instead.
    await Promise.race([ended, client.connect()])
    await Promise.race([ended, client.query(`LISTEN ${CHANGES_CHANNEL}`)])
    this.#setState('subscribed')
    while (!this.#stopped) {
      await Promise.race([ended, sleep(this.#options.heartbeatMs)])
      if (this.#stopped) return
      await Promise.race([ended, withTimeout(client.query('select 1'), this.#options.heartbeatTimeoutMs)])
    }
  }

  /** Drops the connection without waiting on it: a half-open socket may never answer. */
  #drop(): void {
    const client = this.#client
    this.#client = undefined
    if (!client) return
    client.removeAllListeners('notification')
    const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream
    stream?.destroy()
    client.end().catch(() => {})
  }

  #setState(state: ChannelState): void {
    if (state === this.#state) return
    this.#state = state
    this.#options.logger.info({ state }, 'change channel')
    this.emit('state', state)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`heartbeat took over ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
