import { timingSafeEqual } from 'node:crypto'
import type pg from 'pg'
import type { KeyRecord } from '../cache/key-record.ts'
import { UnavailableError } from '../errors.ts'
import { type FoundKeyRecord, findKeyRecords } from './token.repository.ts'

/** Digests per query at most; a larger burst takes several queries. */
const MAX_BATCH = 100

interface Waiting {
  digest: string
  resolve(record: KeyRecord | null): void
  reject(error: unknown): void
}

/**
 * Cache misses, looked up in batches: the digests asked for in one turn of the event
 * loop go to Postgres in one query. Under load, misses arrive together (many
 * connections, each verifying another key), and one query of twenty digests costs
 * Postgres and the pool little more than one of a single digest — so a burst of misses
 * no longer queues for pool connections one round trip at a time. A lone miss waits
 * for nothing but the end of the current turn.
 *
 * Sits below the cache's single-flight and epoch guard, so their guarantees hold
 * unchanged: one load per cold digest, and no load that began before a change is stored.
 */
export class KeyLoader {
  readonly #pool: pg.Pool
  #queue: Waiting[] = []
  #scheduled = false
  /** Counters for metrics and tests. */
  readonly stats = { queries: 0, digests: 0 }

  constructor(pool: pg.Pool) {
    this.#pool = pool
  }

  /** The key's record, or null when no key has this digest (base64url). */
  load(digest: string): Promise<KeyRecord | null> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ digest, resolve, reject })
      if (this.#scheduled) return
      this.#scheduled = true
      setImmediate(() => this.#flush())
    })
  }

  #flush(): void {
    const queue = this.#queue
    this.#queue = []
    this.#scheduled = false
    for (let from = 0; from < queue.length; from += MAX_BATCH) void this.#query(queue.slice(from, from + MAX_BATCH))
  }

  async #query(batch: Waiting[]): Promise<void> {
    this.stats.queries++
    this.stats.digests += batch.length
    let found: FoundKeyRecord[]
    try {
      found = await findKeyRecords(
        this.#pool,
        batch.map((waiting) => waiting.digest),
      )
    } catch (error) {
      const unavailable = new UnavailableError(error)
      for (const waiting of batch) waiting.reject(unavailable)
      return
    }
    const byDigest = new Map(found.map((row) => [row.digest, row]))
    for (const waiting of batch) {
      const row = byDigest.get(waiting.digest)
      // The index did the lookup; compare the digest itself in constant time before trusting the row.
      const same = row !== undefined && timingSafeEqual(Buffer.from(row.digest), Buffer.from(waiting.digest))
      waiting.resolve(same ? row.record : null)
    }
  }
}
