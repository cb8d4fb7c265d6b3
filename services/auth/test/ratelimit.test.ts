import { freshDatabase } from '@tokend/testing'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, type TestApp } from './harness.ts'

let apps: TestApp[] = []
let database: Awaited<ReturnType<typeof freshDatabase>>

beforeAll(async () => {
  database = await freshDatabase()
  apps = await Promise.all([1, 2, 3].map(() => startTestApp({}, database)))
})

afterAll(async () => {
  for (const app of apps) await app.stop()
  await database?.drop()
})

describe('RateLimiter shared by three replicas', () => {
  it('admits at least the limit and at most 10 % more, whatever the interleaving', async () => {
    let run = 0
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 200 }),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 400 }),
        async (limit, replicaOfEachRequest) => {
          const rule = { name: `property ${run++}`, limit, windowMs: 3_600_000 }
          const decisions = await Promise.all(
            replicaOfEachRequest.map((i) => (apps[i] as TestApp).app.deps.ratelimits.consume('acc_property', rule)),
          )
          const admitted = decisions.filter((decision) => decision.allowed).length
          expect(admitted).toBeGreaterThanOrEqual(Math.min(limit, replicaOfEachRequest.length))
          expect(admitted).toBeLessThanOrEqual(Math.floor(limit * 1.1))
        },
      ),
      { numRuns: 40 },
    )
  })

  it('counts a busy window far from its limit in one query per flush delay, not one after another', async () => {
    const limiter = (apps[0] as TestApp).app.deps.ratelimits
    const rule = { name: 'busy', limit: 1_000_000_000, windowMs: 3_600_000 }
    await limiter.consume('acc_busy', rule) // the first request learns the replica count
    const queries = limiter.stats.queries
    const started = performance.now()
    let admitted = 0
    while (performance.now() - started < 500) {
      for (let i = 0; i < 50; i++) if ((await limiter.consume('acc_busy', rule)).allowed) admitted++
      await new Promise((resolve) => setImmediate(resolve))
    }
    const elapsed = performance.now() - started
    expect(admitted).toBeGreaterThan(1_000)
    // One query per 50 ms flush delay, plus the one under way at each end.
    expect(limiter.stats.queries - queries).toBeLessThanOrEqual(Math.ceil(elapsed / 50) + 2)
  })

  it('refuses with the time left in the window', async () => {
    const limiter = (apps[0] as TestApp).app.deps.ratelimits
    const rule = { name: 'retry', limit: 1, windowMs: 60_000 }
    const now = Math.floor(Date.now() / 60_000) * 60_000 + 15_000
    expect(await limiter.consume('acc_retry', rule, now)).toEqual({ allowed: true })
    expect(await limiter.consume('acc_retry', rule, now)).toEqual({ allowed: false, retryAfterMs: 45_000 })
  })
})
