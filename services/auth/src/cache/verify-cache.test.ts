import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type KeyFields, KeyRecord } from './key-record.ts'
import { VerifyCache } from './verify-cache.ts'

const record = (overrides: Partial<KeyFields> = {}): KeyRecord =>
  KeyRecord.from({
    id: 'tok_1',
    accountId: 'acc_1',
    environment: 'live',
    role: 'admin',
    scopes: [],
    name: 'k',
    expiresAt: null,
    disabled: false,
    revoked: false,
    accountActive: true,
    operator: false,
    ...overrides,
  })

const cache = () => {
  const c = new VerifyCache({ maxEntries: 100, ttlMs: 60_000, negativeTtlMs: 5_000 })
  c.resume()
  return c
}

function deferred<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

describe('VerifyCache', () => {
  it('serves hits without loading again', async () => {
    const c = cache()
    let loads = 0
    const load = async () => {
      loads++
      return record()
    }
    await c.lookup('d', load)
    await c.lookup('d', load)
    expect(loads).toBe(1)
  })

  it('shares one load among concurrent misses of one key', async () => {
    const c = cache()
    let loads = 0
    const gate = deferred<KeyRecord>()
    const load = () => {
      loads++
      return gate.promise
    }
    const all = Promise.all(Array.from({ length: 500 }, () => c.lookup('d', load)))
    gate.resolve(record())
    expect((await all).every((r) => r?.id === 'tok_1')).toBe(true)
    expect(loads).toBe(1)
  })

  it('caches unknown keys negatively', async () => {
    const c = cache()
    let loads = 0
    const load = async () => {
      loads++
      return null
    }
    expect(await c.lookup('d', load)).toBeNull()
    expect(await c.lookup('d', load)).toBeNull()
    expect(loads).toBe(1)
  })

  it('does not keep a key past its expiry', async () => {
    const c = cache()
    let loads = 0
    const load = async () => {
      loads++
      return record({ expiresAt: Date.now() + 30 })
    }
    await c.lookup('d', load)
    await new Promise((resolve) => setTimeout(resolve, 40))
    await c.lookup('d', load)
    expect(loads).toBe(2)
  })

  it('never stores a load that began before an eviction', async () => {
    const c = cache()
    const stale = deferred<KeyRecord>()
    const first = c.lookup('d', () => stale.promise) // reads the row before the revoke
    c.evict('d') // the revoke commits and evicts
    // A verify after the eviction does not join the stale load; it reads afresh.
    const fresh = await c.lookup('d', async () => record({ revoked: true }))
    expect(fresh?.revoked).toBe(true)
    stale.resolve(record()) // the stale read finishes late
    expect((await first)?.revoked).toBe(false) // its own caller began before the revoke
    expect((await c.lookup('d', async () => record()))?.revoked).toBe(true)
  })

  it('never lets a revoked key be accepted after the eviction, in any interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 1, max: 4 }), async (s, readers) => {
        const c = cache()
        let revoked = false
        // The "database": answers with the state at the moment the read happens.
        const load = () => s.schedule(Promise.resolve(), 'db read').then(() => record({ revoked }))
        let evicted = false
        const lookups = Array.from({ length: readers }, (_, i) =>
          s.schedule(Promise.resolve(), `verify ${i}`).then(() => c.lookup('d', load)),
        )
        const revoke = s.schedule(Promise.resolve(), 'revoke').then(() => {
          revoked = true
          c.evict('d')
          evicted = true
        })
        await s.waitAll()
        await Promise.all([...lookups, revoke])
        expect(evicted).toBe(true)
        const after = await c.lookup('d', async () => record({ revoked: true }))
        expect(after?.revoked).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('suspend() forgets everything and stops caching until resume()', async () => {
    const c = cache()
    const gate = deferred<KeyRecord>()
    await c.lookup('a', async () => record())
    const pending = c.lookup('b', () => gate.promise)
    c.suspend()
    gate.resolve(record())
    await pending
    expect(c.size).toBe(0)
    let loads = 0
    const load = async () => {
      loads++
      return record()
    }
    await c.lookup('a', load)
    await c.lookup('a', load)
    expect(loads).toBe(2) // suspended: every verify goes to the database
    expect(c.size).toBe(0)
    c.resume()
    await c.lookup('a', load)
    await c.lookup('a', load)
    expect(loads).toBe(3)
  })

  it('resume() keeps loads that began while suspended from storing', async () => {
    const c = cache()
    c.suspend()
    const gate = deferred<KeyRecord>()
    const pending = c.lookup('a', () => gate.promise) // may have read a row whose change was missed
    c.resume()
    gate.resolve(record())
    await pending
    expect(c.size).toBe(0)
  })

  it('evictAccount() forgets exactly that account', async () => {
    const c = cache()
    await c.lookup('a1', async () => record({ accountId: 'acc_a' }))
    await c.lookup('a2', async () => record({ accountId: 'acc_a' }))
    await c.lookup('b1', async () => record({ accountId: 'acc_b' }))
    c.evictAccount('acc_a')
    expect(c.size).toBe(1)
  })
})
