import { sql } from 'kysely'
import type { Logger } from 'pino'
import type { Db } from '../db/database.ts'

/**
 * Keeps `lastUsedAt` without a database write per verify: uses are remembered in
 * memory (one entry per key, the latest time wins) and written in one statement every
 * `flushMs` and at shutdown. A failed write is retried with the next one.
 */
export class UsageRecorder {
  #pending = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined
  readonly #db: Db
  readonly #logger: Logger
  readonly #flushMs: number
  readonly #enabled: boolean

  constructor(options: { db: Db; logger: Logger; flushMs: number; enabled?: boolean }) {
    this.#db = options.db
    this.#logger = options.logger
    this.#flushMs = options.flushMs
    this.#enabled = options.enabled ?? true
  }

  touch(tokenId: string, at = Date.now()): void {
    if (this.#enabled) this.#pending.set(tokenId, at)
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.#flushMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.flush()
  }

  async flush(): Promise<void> {
    if (this.#pending.size === 0) return
    const batch = this.#pending
    this.#pending = new Map()
    const ids = [...batch.keys()]
    const times = ids.map((id) => new Date(batch.get(id) as number).toISOString())
    try {
      await sql`
        update access_keys k set last_used_at = greatest(k.last_used_at, u.used_at)
        from unnest(${ids}::text[], ${times}::timestamptz[]) as u(id, used_at)
        where k.id = u.id
      `.execute(this.#db)
    } catch (error) {
      // Put the uses back unless newer ones arrived meanwhile.
      for (const [id, at] of batch) if ((this.#pending.get(id) ?? 0) < at) this.#pending.set(id, at)
      this.#logger.warn({ err: error, keys: ids.length }, 'lastUsedAt not saved; retrying with the next flush')
    }
  }
}
