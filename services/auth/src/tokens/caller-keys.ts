import type { KeyRecord } from '../cache/key-record.ts'
import type { AccessKeyPrincipal } from '../principal.ts'

/** What is remembered of a caller's key: where it sits in the cache, and the principal last made of it. */
export interface RememberedCaller {
  /** The key's cache key (its digest), so that it is neither parsed nor hashed again. */
  key: string
  /** The cache entry the principal was made of: it is reused only while that same entry is cached. */
  record: KeyRecord
  principal: AccessKeyPrincipal
}

/**
 * The keys that call tokend (a few services' keys, each on every request), remembered by
 * their plaintext so that authenticating one is a Map lookup instead of a parse, a
 * checksum and a SHA-256. Only the work is remembered, never the decision: every
 * request still looks the digest up in the verification cache and checks what it
 * finds, so a change event that evicts the key (revocation, suspension, ...) takes
 * effect on the very next request, as for any other key. The principal is reused only
 * while the cache holds the very record it was made of.
 *
 * Bounded (a flood of valid keys as callers starts it afresh); a key that stops being
 * valid is forgotten. It holds plaintext keys in memory as every request does
 * briefly, never on disk or in a log.
 */
export class CallerKeys {
  readonly #callers = new Map<string, RememberedCaller>()
  readonly #max: number

  constructor(max = 1_000) {
    this.#max = max
  }

  get(token: string): RememberedCaller | undefined {
    return this.#callers.get(token)
  }

  remember(token: string, caller: RememberedCaller): void {
    if (this.#callers.size >= this.#max && !this.#callers.has(token)) this.#callers.clear()
    this.#callers.set(token, caller)
  }

  forget(token: string): void {
    this.#callers.delete(token)
  }

  get size(): number {
    return this.#callers.size
  }
}
