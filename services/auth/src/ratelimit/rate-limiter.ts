import { sql } from 'kysely'
import type { Logger } from 'pino'
import type { Db } from '../db/database.ts'
import { UnavailableError } from '../errors.ts'

export interface RateLimitRule {
  /** What is limited, e.g. an endpoint: each name has its own count per account. */
  name: string
  limit: number
  windowMs: number
}

export type RateLimitDecision = { allowed: true } | { allowed: false; retryAfterMs: number }

interface Waiter {
  limit: number
  retryAfterMs: number
  resolve(decision: RateLimitDecision): void
  reject(error: unknown): void
}

/** One fixed window of one (account, name) on this replica. */
interface Window {
  accountId: string
  name: string
  windowMs: number
  start: number
  /** The shared count as Postgres last reported it (every replica's requests). */
  confirmed: number
  /** Live replicas as Postgres last reported them; unknown until the first count. */
  replicas: number | undefined
  /** Requests this replica admitted on its own, not yet added to the shared count. */
  admitted: number
  /** Admitted requests being added to the shared count right now. */
  adding: number
  /** Requests near the limit, waiting for Postgres to give them their place. */
  waiting: Waiter[]
  /** The flush under way, if any. */
  flushing: Promise<void> | undefined
  timer: NodeJS.Timeout | undefined
}

export interface RateLimiterOptions {
  db: Db
  logger: Logger
  /** How long admitted requests may wait before they are added to the shared count. */
  flushDelayMs?: number
  /** How far all replicas together may overshoot a limit, as a fraction of it. */
  overshoot?: number
}

/**
 * Fixed-window request limits shared by every replica through Postgres, without a
 * database round trip on most requests.
 *
 * Each replica may admit up to `limit × overshoot / replicas` requests on its own
 * before they are added to the shared count; beyond that, and whenever the shared
 * count is close to the limit, requests wait for Postgres to number them and are
 * admitted only if their number is within the limit. So all replicas together admit
 * at least `limit` requests (every number up to the limit is admitted) and at most
 * `limit × (1 + overshoot)` (each replica's unconfirmed admissions are bounded).
 * The replica count comes back with every count update (live change listeners of
 * this database); until a window has one, it admits nothing on its own.
 * Far from the limit a request costs a map lookup; a window known to be exhausted is
 * refused from memory until it ends.
 */
export class RateLimiter {
  readonly #windows = new Map<string, Window>()
  readonly #db: Db
  readonly #logger: Logger
  readonly #flushDelayMs: number
  readonly #overshoot: number
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  /** Queries made, for tests. */
  readonly stats = { queries: 0 }

  constructor(options: RateLimiterOptions) {
    this.#db = options.db
    this.#logger = options.logger
    this.#flushDelayMs = options.flushDelayMs ?? 50
    this.#overshoot = options.overshoot ?? 0.1
  }

  /** Forgets ended windows now and then. */
  start(): void {
    this.#timer = setInterval(() => void this.#housekeeping(), 60_000)
    this.#timer.unref()
  }

  /** Adds every admitted request to the shared count, once any flush under way is done. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    await Promise.all(
      [...this.#windows.values()].map(async (window) => {
        clearTimeout(window.timer)
        await window.flushing
        await this.#flush(window)
      }),
    )
  }

  consume(accountId: string, rule: RateLimitRule, now = Date.now()): RateLimitDecision | Promise<RateLimitDecision> {
    const start = Math.floor(now / rule.windowMs) * rule.windowMs
    const key = `${accountId}\u0000${rule.name}\u0000${rule.windowMs}\u0000${start}`
    let window = this.#windows.get(key)
    if (!window) {
      window = {
        accountId,
        name: rule.name,
        windowMs: rule.windowMs,
        start,
        confirmed: 0,
        replicas: undefined,
        admitted: 0,
        adding: 0,
        waiting: [],
        flushing: undefined,
        timer: undefined,
      }
      this.#windows.set(key, window)
    }
    const retryAfterMs = start + rule.windowMs - now
    if (window.confirmed >= rule.limit) return { allowed: false, retryAfterMs }
    const ownShare = window.replicas ? Math.floor((rule.limit * this.#overshoot) / window.replicas) : 0
    const unconfirmed = window.admitted + window.adding
    if (unconfirmed < ownShare && window.confirmed + unconfirmed < rule.limit) {
      window.admitted++
      this.#scheduleFlush(window)
      return { allowed: true }
    }
    const waiting = window
    return new Promise((resolve, reject) => {
      waiting.waiting.push({ limit: rule.limit, retryAfterMs, resolve, reject })
      void this.#flush(waiting)
    })
  }

  #scheduleFlush(window: Window): void {
    if (window.timer || this.#stopped) return
    window.timer = setTimeout(() => {
      window.timer = undefined
      void this.#flush(window)
    }, this.#flushDelayMs)
    window.timer.unref()
  }

  /**
   * Adds this replica's requests to the shared count and numbers the waiting ones.
   * Loops while requests wait for their number; requests admitted meanwhile wait for
   * the next timer instead, so a busy window costs one query per `flushDelayMs`, not
   * one after another.
   */
  #flush(window: Window): Promise<void> {
    // The flush under way loops until no request waits.
    window.flushing ??= this.#numberRequests(window).finally(() => {
      window.flushing = undefined
      if (window.admitted > 0) this.#scheduleFlush(window)
    })
    return window.flushing
  }

  async #numberRequests(window: Window): Promise<void> {
    let first = true
    while ((first && window.admitted > 0) || window.waiting.length > 0) {
      first = false
      const admitted = window.admitted
      const waiting = window.waiting.splice(0)
      window.admitted = 0
      window.adding = admitted
      let counted: { used: number; replicas: number }
      try {
        counted = await this.#add(window, admitted + waiting.length)
      } catch (error) {
        window.admitted += admitted // counted at the next flush
        for (const waiter of waiting) waiter.reject(new UnavailableError(error))
        this.#logger.warn({ err: error }, 'rate limit count not saved')
        return
      } finally {
        window.adding = 0
      }
      window.confirmed = Math.max(window.confirmed, counted.used)
      window.replicas = Math.max(1, counted.replicas)
      // The admitted requests came first; the waiting ones follow in arrival order.
      let place = counted.used - waiting.length
      for (const waiter of waiting) {
        place++
        waiter.resolve(
          place <= waiter.limit ? { allowed: true } : { allowed: false, retryAfterMs: waiter.retryAfterMs },
        )
      }
    }
  }

  async #add(window: Window, count: number): Promise<{ used: number; replicas: number }> {
    this.stats.queries++
    const { rows } = await sql<{ used: number; replicas: number }>`
      insert into rate_limit_counters (account_id, name, window_ms, window_start, used)
      values (${window.accountId}, ${window.name}, ${window.windowMs}, ${new Date(window.start)}, ${count})
      on conflict (account_id, name, window_ms, window_start)
        do update set used = rate_limit_counters.used + excluded.used
      returning used,
        (select count(*)::int from pg_stat_activity
          where application_name = 'tokend-listener' and datname = current_database()) as replicas
    `.execute(this.#db)
    return rows[0] as { used: number; replicas: number }
  }

  async #housekeeping(): Promise<void> {
    const now = Date.now()
    for (const [key, window] of this.#windows) {
      const idle = window.admitted === 0 && window.waiting.length === 0 && !window.flushing
      if (idle && window.start + window.windowMs < now) this.#windows.delete(key)
    }
    try {
      await this.#db
        .deleteFrom('rate_limit_counters')
        .where('window_start', '<', sql<Date>`now() - interval '2 days'`)
        .execute()
    } catch (error) {
      this.#logger.debug({ err: error }, 'rate limit housekeeping skipped')
    }
  }
}
