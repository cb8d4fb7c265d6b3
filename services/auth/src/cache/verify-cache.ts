import { LRUCache } from 'lru-cache'
import type { MaybePromise } from '../maybe-promise.ts'
import type { KeyRecord } from './key-record.ts'

export { KeyRecord } from './key-record.ts'

/** What any cached record carries: its account, and when it stops being valid. */
export interface Cacheable {
  accountId: string
  /** Epoch milliseconds, or null for never. */
  expiresAt: number | null
}

const UNKNOWN = Symbol('unknown key')

export interface VerifyCacheOptions {
  maxEntries: number
  ttlMs: number
  negativeTtlMs: number
}

/**
 * The per-replica verification cache, keyed by key digest (never the key; see cacheKey).
 *
 * Entries hold the key's row, not a verdict, so expiry is checked on every hit and
 * a key is never served past it. Invalidation (`evict`, `evictAccount`, `suspend`,
 * `resume`) bumps `epoch`: a load that began before an invalidation returns its
 * answer to its own caller but never stores it, so a revoked key cannot be put back
 * by a verify that read the row before the revocation. Concurrent misses of one
 * digest share one load.
 *
 * The cache starts suspended: until the change channel is subscribed it neither
 * answers from memory nor stores, since it could not hear of changes.
 */
export class VerifyCache<R extends Cacheable = KeyRecord> {
  readonly #lru: LRUCache<string, R | typeof UNKNOWN>
  readonly #inflight = new Map<string, Promise<R | null>>()
  readonly #options: VerifyCacheOptions
  #epoch = 0
  #active = false
  /** Counters for metrics and tests. */
  readonly stats = { hits: 0, misses: 0, loads: 0, evictions: 0 }

  constructor(options: VerifyCacheOptions) {
    this.#options = options
    this.#lru = new LRUCache<string, R | typeof UNKNOWN>({ max: options.maxEntries, ttl: Math.max(options.ttlMs, 1) })
  }

  get size(): number {
    return this.#lru.size
  }

  /**
   * The key's record, loading it through `load` on a miss (null: no such key). A hit is
   * answered now, not as a promise: verify's hot path stays synchronous.
   */
  lookup(digest: string, load: (digest: string) => Promise<R | null>): MaybePromise<R | null> {
    const hit = this.#active ? this.#lru.get(digest) : undefined
    if (hit !== undefined) {
      this.stats.hits++
      return hit === UNKNOWN ? null : hit
    }
    this.stats.misses++
    const joined = this.#inflight.get(digest)
    if (joined) return joined
    const epoch = this.#epoch
    this.stats.loads++
    const pending: Promise<R | null> = load(digest)
      .then((record) => {
        if (epoch === this.#epoch) this.#store(digest, record)
        return record
      })
      .finally(() => {
        if (this.#inflight.get(digest) === pending) this.#inflight.delete(digest)
      })
    this.#inflight.set(digest, pending)
    return pending
  }

  /** Forgets one key on this replica; loads already under way will not store. */
  evict(digest: string): void {
    this.#epoch++
    this.#inflight.delete(digest)
    if (this.#lru.delete(digest)) this.stats.evictions++
  }

  /** Forgets every key of one account (suspension, bulk changes). */
  evictAccount(accountId: string): void {
    this.evictWhere((record) => record.accountId === accountId)
  }

  /** Forgets every record that `match` picks; loads under way will not store. */
  evictWhere(match: (record: R) => boolean): void {
    this.#epoch++
    this.#inflight.clear()
    const digests: string[] = []
    for (const [digest, entry] of this.#lru.entries()) {
      if (entry !== UNKNOWN && match(entry)) digests.push(digest)
    }
    for (const digest of digests) this.#lru.delete(digest)
    this.stats.evictions += digests.length
  }

  /** Change events may be missed from now on: forget everything and stop caching. */
  suspend(): void {
    this.#active = false
    this.#epoch++
    this.#inflight.clear()
    this.stats.evictions += this.#lru.size
    this.#lru.clear()
  }

  /**
   * Change events are heard again: cache from now on. Loads that began before this
   * point may have read rows whose change event was missed, so they never store.
   */
  resume(): void {
    this.#epoch++
    this.#inflight.clear()
    this.#active = true
  }

  get active(): boolean {
    return this.#active
  }

  #store(digest: string, record: R | null): void {
    if (!this.#active) return
    if (record === null) {
      if (this.#options.negativeTtlMs > 0) this.#lru.set(digest, UNKNOWN, { ttl: this.#options.negativeTtlMs })
      return
    }
    let ttl = this.#options.ttlMs
    if (record.expiresAt !== null) ttl = Math.min(ttl, record.expiresAt - Date.now())
    if (ttl > 0) this.#lru.set(digest, record, { ttl })
  }
}
