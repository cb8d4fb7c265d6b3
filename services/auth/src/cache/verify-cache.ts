import { LRUCache } from 'lru-cache'

/** What verification needs to know about one key; evaluated afresh on every hit. */
export interface KeyRecord {
  id: string
  accountId: string
  environment: 'live' | 'test'
  role: 'admin' | 'manager'
  scopes: readonly string[]
  name: string
  /** Epoch milliseconds, or null for a key that never expires. */
  expiresAt: number | null
  disabled: boolean
  revoked: boolean
  accountActive: boolean
  operator: boolean
}

const UNKNOWN = Symbol('unknown key')
type Entry = KeyRecord | typeof UNKNOWN

export interface VerifyCacheOptions {
  maxEntries: number
  ttlMs: number
  negativeTtlMs: number
}

/**
 * The per-replica verification cache, keyed by key digest (never the key).
 *
 * Entries hold the key's row, not a verdict, so expiry is checked on every hit and
 * a key is never served past it. Invalidation (`evict`, `clear`) bumps `epoch`: a
 * load that began before an invalidation returns its answer to its own caller but
 * never stores it, so a revoked key cannot be put back by a verify that read the
 * row before the revocation. Concurrent misses of one digest share one load.
 */
export class VerifyCache {
  readonly #lru: LRUCache<string, Entry>
  readonly #inflight = new Map<string, Promise<KeyRecord | null>>()
  readonly #options: VerifyCacheOptions
  #epoch = 0

  constructor(options: VerifyCacheOptions) {
    this.#options = options
    this.#lru = new LRUCache<string, Entry>({ max: options.maxEntries, ttl: Math.max(options.ttlMs, 1) })
  }

  get size(): number {
    return this.#lru.size
  }

  /** The key's record, loading it through `load` on a miss (null: no such key). */
  async lookup(digest: string, load: (digest: string) => Promise<KeyRecord | null>): Promise<KeyRecord | null> {
    const hit = this.#lru.get(digest)
    if (hit !== undefined) return hit === UNKNOWN ? null : hit
    const joined = this.#inflight.get(digest)
    if (joined) return joined
    const epoch = this.#epoch
    const pending: Promise<KeyRecord | null> = load(digest)
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
    this.#lru.delete(digest)
  }

  /** Forgets everything on this replica (e.g. when change events may have been lost). */
  clear(): void {
    this.#epoch++
    this.#inflight.clear()
    this.#lru.clear()
  }

  #store(digest: string, record: KeyRecord | null): void {
    if (record === null) {
      if (this.#options.negativeTtlMs > 0) this.#lru.set(digest, UNKNOWN, { ttl: this.#options.negativeTtlMs })
      return
    }
    let ttl = this.#options.ttlMs
    if (record.expiresAt !== null) ttl = Math.min(ttl, record.expiresAt - Date.now())
    if (ttl > 0) this.#lru.set(digest, record, { ttl })
  }
}
