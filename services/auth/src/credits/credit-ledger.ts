import type pg from 'pg'
import type { Logger } from 'pino'
import { UnavailableError } from '../errors.ts'
import { giveBackCredits, peekPool, takeCredits } from './credits.repository.ts'
import { periodEnd } from './credits.ts'

/** What a spend answered: whether it may go ahead, and what this replica sees left. */
export type Spent = { ok: boolean; remaining: number } | { ok: true; remaining: undefined }

/** Credits this replica holds on lease for one key. */
interface Lease {
  /** Unspent here. */
  local: number
  /** What the pool held when this replica last looked. */
  pool: number
  generation: number
  /** When the lease's period ends (its credits are forgotten then), or Infinity without refills. */
  endsAt: number
  /** performance.now() of the last spend, and of the last look at the pool. */
  usedAt: number
  checkedAt: number
}

export interface CreditLedgerOptions {
  pool: pg.Pool
  logger: Logger
  /** Epoch ms; tests inject one to cross a refill boundary. */
  clock?: () => number
  /** A lease unused this long goes back to the pool. */
  idleMs?: number
  /** Leases are at most this large, and at most 1/`share` of what the pool holds. */
  maxLease?: number
  share?: number
}

const NO_CREDITS: Spent = { ok: true, remaining: undefined }
const ATTEMPTS = 4
const RECHECK_MS = 50
/** Renewals by other spends of the same key that one spend waits for at most. */
const MAX_WAITS = 64

/**
 * Usage credits on one replica (docs/credits.md). Postgres holds each key's pool; a
 * replica leases a block from it with one atomic UPDATE and spends the block locally,
 * so most verifies of a key with credits cost a Map lookup. A block is at most
 * `maxLease` and at most 1/`share` of the pool, so near exhaustion blocks shrink to
 * the cost itself and replicas refuse briefly rather than overshoot. Unused credits go
 * back when a lease is idle, when the key changes (its change event), when the change
 * channel is lost, and at shutdown — to the generation they came from only: after an
 * update or a refill the old block is forgotten, never added to the new budget.
 *
 * Every successful spend is a credit the pool gave up exactly once, so successes never
 * exceed credits, on any number of replicas.
 */
export class CreditLedger {
  readonly #leases = new Map<string, Lease>()
  /** Keys whose lease is being renewed: later spends wait for it instead of leasing too. */
  readonly #renewing = new Map<string, Promise<unknown>>()
  readonly #givingBack = new Set<Promise<void>>()
  readonly #pool: pg.Pool
  readonly #logger: Logger
  readonly #clock: () => number
  readonly #idleMs: number
  readonly #maxLease: number
  readonly #share: number
  #changes = 0
  #timer: NodeJS.Timeout | undefined
  /** Counters for metrics and tests. */
  readonly stats = { leases: 0, leased: 0, givenBack: 0 }

  constructor(options: CreditLedgerOptions) {
    this.#pool = options.pool
    this.#logger = options.logger
    this.#clock = options.clock ?? Date.now
    this.#idleMs = options.idleMs ?? 2_000
    this.#maxLease = options.maxLease ?? 1_000
    this.#share = options.share ?? 16
  }

  get now(): number {
    return this.#clock()
  }

  start(): void {
    this.#timer = setInterval(() => void this.#giveBackIdle(), Math.max(100, this.#idleMs / 2))
    this.#timer.unref()
  }

  /** Gives back every lease, and waits for every give-back under way; call before the pool closes. */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.releaseAll()
    await Promise.all(this.#givingBack)
  }

  /**
   * Spends `cost` credits of the key (0 checks without spending; either needs at least
   * one credit left). Answers at once from this replica's lease when it can; otherwise
   * renews the lease. Throws UnavailableError when Postgres cannot lease: never a guess.
   */
  spend(keyId: string, cost: number): Spent | Promise<Spent> {
    const spent = this.#spendLocal(keyId, cost)
    return spent ?? this.#renew(keyId, cost)
  }

  /** The key changed (update, revocation, …): its lease goes back, and no renewal under way is kept. */
  release(keyId: string): void {
    this.#changes++
    const lease = this.#leases.get(keyId)
    if (!lease) return
    this.#leases.delete(keyId)
    void this.#giveBack(keyId, lease)
  }

  /** Every lease goes back (shutdown, change channel lost: changes may go unheard). */
  async releaseAll(): Promise<void> {
    this.#changes++
    const leases = [...this.#leases]
    this.#leases.clear()
    await Promise.all(leases.map(([keyId, lease]) => this.#giveBack(keyId, lease)))
  }

  #spendLocal(keyId: string, cost: number): Spent | null {
    const lease = this.#leases.get(keyId)
    if (lease === undefined || lease.local < Math.max(cost, 1) || this.#clock() >= lease.endsAt) return null
    lease.local -= cost
    lease.usedAt = performance.now()
    return { ok: true, remaining: lease.local + lease.pool }
  }

  async #renew(keyId: string, cost: number): Promise<Spent> {
    for (let attempt = 0, waits = 0; attempt < ATTEMPTS && waits < MAX_WAITS; ) {
      const busy = this.#renewing.get(keyId)
      if (busy) {
        waits++
        await busy.catch(() => {})
        const spent = this.#spendLocal(keyId, cost)
        if (spent) return spent
        continue
      }
      attempt++
      const renewal = this.#lease(keyId, cost)
      this.#renewing.set(keyId, renewal)
      try {
        const spent = await renewal
        if (spent) return spent
      } finally {
        if (this.#renewing.get(keyId) === renewal) this.#renewing.delete(keyId)
      }
    }
    // The pool kept changing under us (leases, refills, updates racing): refuse this once.
    const lease = this.#leases.get(keyId)
    return { ok: false, remaining: lease ? lease.local + lease.pool : 0 }
  }

  /** One try at leasing enough for `cost` and spending it; null to try again. */
  async #lease(keyId: string, cost: number): Promise<Spent | null> {
    const need = Math.max(cost, 1)
    const changes = this.#changes
    const now = this.#clock()
    const tick = performance.now()
    let lease = this.#leases.get(keyId)
    if (lease && now >= lease.endsAt) {
      // The period is over: what is left of its lease is not this period's to spend.
      this.#leases.delete(keyId)
      lease = undefined
    }
    const held = lease?.local ?? 0
    // A pool just seen too small is not asked again at once: a brief refusal, no query per verify.
    if (lease && held + lease.pool < need && tick - lease.checkedAt < RECHECK_MS) {
      return { ok: false, remaining: held + lease.pool }
    }
    try {
      let view: { remaining: number; generation: number; endsAt: number }
      if (lease && held + lease.pool >= need)
        view = { remaining: lease.pool, generation: lease.generation, endsAt: lease.endsAt }
      else {
        const found = await peekPool(this.#pool, keyId, now)
        if (found === null) {
          // No credits any more (removed by an update whose event has not come yet).
          this.#leases.delete(keyId)
          return NO_CREDITS
        }
        const endsAt = found.interval === null ? Number.POSITIVE_INFINITY : periodEnd(found.refilledAt, found.interval)
        view = { remaining: found.remaining, generation: found.generation, endsAt }
        if (lease && lease.generation !== found.generation) {
          // The budget was set anew: the old lease is forgotten, not given back.
          this.#leases.delete(keyId)
          return null
        }
        if (lease) {
          // Spends may have run meanwhile: the lease is updated in place, never replaced.
          lease.pool = view.remaining
          lease.checkedAt = tick
        }
        if (held + view.remaining < need) {
          if (!lease) this.#leases.set(keyId, this.#newLease(0, view, tick))
          const local = lease?.local ?? 0
          return { ok: false, remaining: local + view.remaining }
        }
      }
      const share = Math.min(this.#maxLease, Math.floor(view.remaining / this.#share))
      const block = Math.min(view.remaining, Math.max(need - held, share))
      const left = await takeCredits(this.#pool, keyId, block, view.generation)
      if (left === null) {
        // Others leased first, or the budget was set anew: look at the pool itself next time.
        if (lease) lease.pool = 0
        return null
      }
      this.stats.leases++
      this.stats.leased += block
      const current = this.#leases.get(keyId)
      if (changes !== this.#changes || (current !== undefined && current !== lease)) {
        // A change event came while leasing: this block may be of a budget just replaced.
        await this.#giveBack(keyId, { local: block, generation: view.generation, endsAt: view.endsAt })
        return null
      }
      if (current) {
        current.local += block
        current.pool = left
        current.usedAt = tick
      } else {
        this.#leases.set(keyId, this.#newLease(block, { ...view, remaining: left }, tick))
      }
      return this.#spendLocal(keyId, cost)
    } catch (error) {
      throw new UnavailableError(error)
    }
  }

  #newLease(local: number, view: { remaining: number; generation: number; endsAt: number }, tick: number): Lease {
    const { remaining, generation, endsAt } = view
    return { local, pool: remaining, generation, endsAt, usedAt: tick, checkedAt: tick }
  }

  #giveBack(keyId: string, lease: Pick<Lease, 'local' | 'generation' | 'endsAt'>): Promise<void> {
    const amount = lease.local
    lease.local = 0
    if (amount <= 0 || this.#clock() >= lease.endsAt) return Promise.resolve()
    const done = this.#return(keyId, amount, lease.generation).finally(() => this.#givingBack.delete(done))
    this.#givingBack.add(done)
    return done
  }

  async #return(keyId: string, amount: number, generation: number): Promise<void> {
    try {
      await giveBackCredits(this.#pool, keyId, amount, generation)
      this.stats.givenBack += amount
    } catch (error) {
      // Lost credits are refused, never overspent; the next refill or update restores them.
      this.#logger.warn({ err: error, keyId, amount }, 'unused credits not given back')
    }
  }

  async #giveBackIdle(): Promise<void> {
    const now = performance.now()
    for (const [keyId, lease] of this.#leases) {
      if (now - lease.usedAt < this.#idleMs || this.#renewing.has(keyId)) continue
      this.#leases.delete(keyId)
      await this.#giveBack(keyId, lease)
    }
  }
}
