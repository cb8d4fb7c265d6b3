import type pg from 'pg'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { VerifyCache } from '../cache/verify-cache.ts'
import type { ChangeListener } from '../changes/change-listener.ts'
import type { KeyLoader } from '../tokens/key-loader.ts'
import { FastHistogram } from './fast-histogram.ts'

/** Prometheus metrics of one replica, served at /metrics. */
export class Metrics {
  readonly registry = new Registry()
  /**
   * Verifies counted by result here and handed to prom-client when it is scraped: its
   * `inc`, labelled or not, hashes the labels on every call.
   */
  readonly #verifiesBy = new Map<string, { labels: { result: string; kind: string }; count: number }>()
  readonly #verifyDuration: FastHistogram
  readonly #invalidationLag: Histogram
  readonly #unexpected: Counter<'where'>

  constructor(sources: { cache: VerifyCache; keys: KeyLoader; changes: ChangeListener; pool: pg.Pool }) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    const verifiesBy = this.#verifiesBy
    new Counter({
      name: 'tokend_verifies_total',
      help: 'token.verify answers by result (valid or the denial reason) and credential kind',
      labelNames: ['result', 'kind'],
      registers,
      collect() {
        for (const counted of verifiesBy.values()) {
          this.inc(counted.labels, counted.count)
          counted.count = 0
        }
      },
    })
    this.#verifyDuration = new FastHistogram(
      'tokend_verify_duration_seconds',
      'Time to answer token.verify inside the service',
      [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      this.registry,
    )
    this.#invalidationLag = new Histogram({
      name: 'tokend_invalidation_lag_seconds',
      help: 'From a change (NOTIFY sent) to its eviction on this replica',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    })
    this.#unexpected = new Counter({
      name: 'tokend_unexpected_errors_total',
      help: 'Errors nothing expected, by where they were caught: each was logged, and its request answered 500',
      labelNames: ['where'],
      registers,
    })
    const { cache, keys, changes, pool } = sources
    counterFrom('tokend_cache_hits_total', 'Verifications answered from the cache', () => cache.stats.hits, registers)
    counterFrom(
      'tokend_cache_misses_total',
      'Verifications the cache could not answer',
      () => cache.stats.misses,
      registers,
    )
    counterFrom(
      'tokend_cache_loads_total',
      'Keys looked up in the database for cache misses',
      () => cache.stats.loads,
      registers,
    )
    counterFrom(
      'tokend_key_queries_total',
      'Database queries made for cache misses (each looks up a batch of keys)',
      () => keys.stats.queries,
      registers,
    )
    counterFrom('tokend_cache_evictions_total', 'Entries removed by changes', () => cache.stats.evictions, registers)
    gaugeFrom('tokend_cache_entries', 'Entries in the verification cache', () => cache.size, registers)
    gaugeFrom(
      'tokend_change_channel_up',
      '1 while the change channel is subscribed',
      () => Number(changes.state === 'subscribed'),
      registers,
    )
    gaugeFrom('tokend_db_pool_connections', 'Open database connections in the pool', () => pool.totalCount, registers)
    gaugeFrom('tokend_db_pool_idle', 'Idle database connections in the pool', () => pool.idleCount, registers)
    gaugeFrom('tokend_db_pool_waiting', 'Queries waiting for a database connection', () => pool.waitingCount, registers)
  }

  verified(result: { valid: boolean; reason?: string; kind?: string }, seconds: number): void {
    // A valid answer is told apart by its kind, a refusal by its reason: the two never meet.
    const which = result.valid ? (result.kind ?? 'none') : (result.reason ?? 'unknown')
    let counted = this.#verifiesBy.get(which)
    if (!counted) {
      const labels = { result: result.valid ? 'valid' : (result.reason ?? 'unknown'), kind: result.kind ?? 'none' }
      counted = { labels, count: 0 }
      this.#verifiesBy.set(which, counted)
    }
    counted.count++
    this.#verifyDuration.observe(seconds)
  }

  /** An error no code expected: `request` (answered 500) or `process` (a stray rejection or exception). */
  unexpected(where: 'request' | 'process'): void {
    this.#unexpected.inc({ where })
  }

  invalidated(sentAt: number | undefined): void {
    if (sentAt !== undefined) this.#invalidationLag.observe(Math.max(0, Date.now() - sentAt) / 1000)
  }
}

function gaugeFrom(name: string, help: string, read: () => number, registers: Registry[]): void {
  new Gauge({
    name,
    help,
    registers,
    collect() {
      this.set(read())
    },
  })
}

/** A counter that mirrors an ever-growing number kept elsewhere. */
function counterFrom(name: string, help: string, read: () => number, registers: Registry[]): void {
  let seen = 0
  new Counter({
    name,
    help,
    registers,
    collect() {
      const now = read()
      if (now > seen) this.inc(now - seen)
      seen = now
    },
  })
}
