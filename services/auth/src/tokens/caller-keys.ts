import type { KeyRecord } from '../cache/key-record.ts'
import type { AccessKeyPrincipal } from '../principal.ts'

/**
 * Work done for a key, remembered by its plaintext: bounded (full, it starts afresh, so
 * a flood of new keys cannot grow it). Only work is remembered, never a decision: every
 * request still looks the key's digest up in the verification cache and judges what it
 * finds, so a change event that evicts the key (revocation, suspension, ...) takes
 * effect on the very next request. It holds plaintext keys in memory as every request
 * does briefly, never on disk or in a log.
 */
class PlaintextMemo<V> {
  readonly #entries = new Map<string, V>()
  readonly #max: number

  constructor(max: number) {
    this.#max = max
  }

  get(token: string): V | undefined {
    return this.#entries.get(token)
  }

  remember(token: string, value: V): void {
    if (this.#entries.size >= this.#max && !this.#entries.has(token)) this.#entries.clear()
    this.#entries.set(token, value)
  }

  forget(token: string): void {
    this.#entries.delete(token)
  }

  get size(): number {
    return this.#entries.size
  }
}

/**
 * The cache keys (digests) of keys found before: checking a key seen again skips its
 * format check and SHA-256. Only keys that were found are remembered, so a flood of
 * unknown keys cannot churn it; a plaintext's digest never changes, so nothing here
 * goes stale.
 */
export class KeyDigests extends PlaintextMemo<string> {
  constructor(max = 10_000) {
    super(max)
  }
}

/** What is remembered of a caller's key: the principal last made of it, and of which cache entry. */
export interface RememberedCaller {
  /** The cache entry the principal was made of: it is reused only while that same entry is cached. */
  record: KeyRecord
  principal: AccessKeyPrincipal
}

/**
 * The keys that call tokend (a few services' keys, each on every request), with the
 * principal made of each, so that authenticating one makes no new principal while the
 * cache holds the same record.
 */
export class CallerKeys extends PlaintextMemo<RememberedCaller> {
  constructor(max = 1_000) {
    super(max)
  }
}
