import { LRUCache } from 'lru-cache'
import type { VerifyResult } from './types.ts'

/**
 * The local cache's bounds (`createTokendClient({ cache })`).
 *
 * @example
 * ```ts
 * createTokendClient({ url, serviceKey, cache: { maxEntries: 50_000, ttlMs: 30_000 } })
 * ```
 */
export interface CacheOptions {
  /** Entries kept at most (least recently used go first). Default 10 000. */
  maxEntries?: number
  /** How long one answer is trusted, at most 60 s and never past the key's expiry. Default 60 000. */
  ttlMs?: number
}

const MAX_TTL_MS = 60_000
// Answers that depend only on the key itself; requirement checks are redone on every hit.
const CACHEABLE_DENIALS = new Set(['MALFORMED', 'NOT_FOUND', 'EXPIRED', 'REVOKED', 'DISABLED', 'ACCOUNT_SUSPENDED'])
// Answers no later change can undo: safe to keep without hearing of the key's account.
const FINAL_DENIALS = new Set(['MALFORMED', 'NOT_FOUND', 'EXPIRED', 'REVOKED'])
// tokend's answers about a derived token that depend only on its parent key and scopes.
const PARENT_DENIALS = new Set(['REVOKED', 'DISABLED', 'ACCOUNT_SUSPENDED', 'INSUFFICIENT_SCOPE', 'NOT_FOUND'])

/** What the cache knows about a parent key, for its derived tokens holding one set of scopes. */
interface ParentEntry {
  parent: string
  accountId: string
  result: VerifyResult
}

/** The stream scope of a service key of the operator account: every account's changes. */
export const ALL_ACCOUNTS = 'all'

/**
 * The client's verification cache, keyed by key digest (never the key). It answers
 * only while the change stream is open and has said `ready`; `suspend()` (the stream
 * dropped, errored or went silent) forgets everything. Every invalidation bumps
 * `epoch`, and a verify stores its answer only if the epoch is the one it started
 * in, so an answer read before a change can never be put back after it.
 */
export class VerifyCache {
  readonly #lru: LRUCache<string, VerifyResult>
  /** Derived tokens' parents, by parent and scopes (see derived.ts). */
  readonly #parents: LRUCache<string, ParentEntry>
  readonly #ttlMs: number
  #epoch = 0
  #ready = false
  #scope = ALL_ACCOUNTS

  constructor(options: CacheOptions = {}) {
    this.#ttlMs = Math.min(options.ttlMs ?? MAX_TTL_MS, MAX_TTL_MS)
    this.#lru = new LRUCache({ max: options.maxEntries ?? 10_000, ttl: Math.max(this.#ttlMs, 1) })
    this.#parents = new LRUCache({ max: options.maxEntries ?? 10_000, ttl: Math.max(this.#ttlMs, 1) })
  }

  get ready(): boolean {
    return this.#ready
  }

  get epoch(): number {
    return this.#epoch
  }

  get size(): number {
    return this.#lru.size
  }

  get(digest: string): VerifyResult | undefined {
    if (!this.#ready) return undefined
    const hit = this.#lru.get(digest)
    // The TTL already stops at the expiry; this also holds if the clock jumped.
    if (hit?.valid && hit.expiresAt !== null && Date.parse(hit.expiresAt) <= Date.now()) {
      return { valid: false, reason: 'EXPIRED' }
    }
    return hit
  }

  /** Stores an answer fetched in `epoch`, unless anything was invalidated since. */
  store(digest: string, result: VerifyResult, epoch: number): void {
    if (!this.#ready || epoch !== this.#epoch) return
    if (!result.valid && !CACHEABLE_DENIALS.has(result.reason)) return
    // A key bound to networks answered for one address; another address needs tokend's answer.
    if (result.valid && result.kind === 'access_key' && result.allowedCidrs !== undefined) return
    // A key with usage credits spends on every verify: its answers are never reused.
    if ((result as { remaining?: number }).remaining !== undefined) return
    // The stream tells only the scope's changes: an answer that another account's change could undo is not kept.
    if (
      this.#scope !== ALL_ACCOUNTS &&
      (result.valid ? result.accountId !== this.#scope : !FINAL_DENIALS.has(result.reason))
    ) {
      return
    }
    let ttl = this.#ttlMs
    if (result.valid && result.expiresAt !== null) ttl = Math.min(ttl, Date.parse(result.expiresAt) - Date.now())
    // Shared by every hit: frozen so no caller can change what the next one sees.
    if (result.valid) Object.freeze(result.scopes)
    if (ttl > 0) this.#lru.set(digest, Object.freeze(result), { ttl })
  }

  /** A key changed: forget its answer, and its answers as a parent (all parents' when its id is unknown). */
  evict(digest: string, tokenId?: string): void {
    this.#epoch++
    this.#lru.delete(digest)
    if (tokenId === undefined) this.#parents.clear()
    else this.#deleteParents((entry) => entry.parent === tokenId)
  }

  /** tokend's answer about a derived token's parent (for tokens of these scopes), while the stream is ready. */
  getParent(key: string): VerifyResult | undefined {
    if (!this.#ready) return undefined
    return this.#parents.get(key)?.result
  }

  /**
   * Stores tokend's answer about a derived token, fetched in `epoch`, as its parent's
   * answer for tokens of the same scopes: unless anything was invalidated since, and
   * only when the stream tells this account's changes.
   */
  storeParent(key: string, entry: ParentEntry, epoch: number): void {
    if (!this.#ready || epoch !== this.#epoch) return
    if (this.#scope !== ALL_ACCOUNTS && entry.accountId !== this.#scope) return
    const { result } = entry
    if (!result.valid && !PARENT_DENIALS.has(result.reason)) return
    if (result.valid && result.kind !== 'derived') return
    // A parent bound to networks answered for one address; another address needs tokend's answer.
    if (result.valid && result.allowedCidrs !== undefined) return
    // A parent with usage credits is charged for every verify of its tokens: never answered offline.
    if (result.valid && result.remaining !== undefined) return
    if (result.valid) Object.freeze(result.scopes)
    this.#parents.set(key, Object.freeze({ ...entry, result: Object.freeze(result) }))
  }

  #deleteParents(match: (entry: ParentEntry) => boolean): void {
    const keys: string[] = []
    for (const [key, entry] of this.#parents.entries()) if (match(entry)) keys.push(key)
    for (const key of keys) this.#parents.delete(key)
  }

  /** An account changed (e.g. suspended or reactivated): forget its keys and every suspension answer. */
  evictAccount(accountId: string): void {
    this.#epoch++
    const digests: string[] = []
    for (const [digest, result] of this.#lru.entries()) {
      if (result.valid ? result.accountId === accountId : result.reason === 'ACCOUNT_SUSPENDED') digests.push(digest)
    }
    for (const digest of digests) this.#lru.delete(digest)
    this.#deleteParents((entry) => entry.accountId === accountId)
  }

  /** Changes may be missed from now on: forget everything and stop answering. */
  suspend(): void {
    this.#ready = false
    this.#epoch++
    this.#lru.clear()
    this.#parents.clear()
  }

  /**
   * The stream said `ready`: answer and store again, but never what was fetched before
   * now. `scope` is whose changes the stream tells: every account's, or one account's.
   */
  resume(scope: string = ALL_ACCOUNTS): void {
    this.#epoch++
    this.#scope = scope
    this.#ready = true
  }
}

/** Applies requirements to an answer exactly as tokend's `token.verify` does. */
export function applyRequirements(
  result: VerifyResult,
  require: {
    scopes?: readonly string[] | undefined
    environment?: string | undefined
    role?: string | undefined
    audience?: string | undefined
  },
): VerifyResult {
  if (!result.valid) return result
  if (require.audience !== undefined && result.kind === 'derived' && result.audience !== require.audience) {
    return { valid: false, reason: 'WRONG_AUDIENCE' }
  }
  if (require.environment && require.environment !== result.environment) {
    return { valid: false, reason: 'WRONG_ENVIRONMENT' }
  }
  const missingScopes = require.scopes?.filter((scope) => !result.scopes.includes(scope)) ?? []
  if (missingScopes.length > 0) return { valid: false, reason: 'INSUFFICIENT_SCOPE', missingScopes }
  if (require.role === 'admin' && result.role !== 'admin') return { valid: false, reason: 'INSUFFICIENT_SCOPE' }
  return result
}
