import { digestKey, generateKey } from '@tokend/keys'
import { freshDatabase } from '@tokend/testing'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cacheKey } from '../src/cache/cache-key.ts'
import { UnavailableError } from '../src/errors.ts'
import { KeyLoader } from '../src/tokens/key-loader.ts'
import { findKeyRecord } from '../src/tokens/token.repository.ts'
import { type Caller, issue, startTestApp, type TestApp } from './harness.ts'

let a: TestApp
let b: TestApp
/** B's caller, holding the key A bootstrapped (B found the operator already there). */
let onB: Caller
let database: Awaited<ReturnType<typeof freshDatabase>>

beforeAll(async () => {
  database = await freshDatabase()
  a = await startTestApp({}, database)
  b = await startTestApp({}, database)
  onB = b.operator.as(a.bootstrapKey)
})

afterAll(async () => {
  await a?.stop()
  await b?.stop()
  await database?.drop()
})

describe('verification cache', () => {
  it('answers 500 concurrent verifies of one cold key with one database query', async () => {
    const key = await issue(a.operator)
    await onB.query('me') // the caller's own key is warm
    const loadsBefore = b.app.deps.cache.stats.loads
    // One batch of 500 calls: tRPC runs them concurrently, so all 500 miss together.
    const paths = Array.from({ length: 500 }, () => 'token.verify').join(',')
    const input = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [i, { token: key.token }]))
    const reply = await onB.mutation(`${paths}?batch=1`, input)
    expect(reply.status).toBe(200)
    expect(reply.body.every((item: any) => item.result.data.valid === true)).toBe(true)
    expect(b.app.deps.cache.stats.loads - loadsBefore).toBe(1)

    // And 500 separate concurrent requests of another cold key: still one query.
    const other = await issue(a.operator)
    const before = b.app.deps.cache.stats.loads
    const replies = await Promise.all(
      Array.from({ length: 500 }, () => onB.mutation('token.verify', { token: other.token })),
    )
    expect(replies.every((r) => r.body.result.data.valid === true)).toBe(true)
    expect(b.app.deps.cache.stats.loads - before).toBe(1)
  })

  it('looks up concurrent misses of different keys together, in one query per turn', async () => {
    const keys = await Promise.all(Array.from({ length: 30 }, () => issue(a.operator)))
    const unknown = Array.from({ length: 10 }, () => generateKey('tk', 'live'))
    await onB.query('me')
    const before = { loads: b.app.deps.cache.stats.loads, queries: b.app.deps.keys.stats.queries }
    const tokens = [...keys.map((key) => key.token), ...unknown]
    const paths = tokens.map(() => 'token.verify').join(',')
    const reply = await onB.mutation(`${paths}?batch=1`, Object.fromEntries(tokens.map((token, i) => [i, { token }])))
    const results = reply.body.map((item: any) => item.result.data)
    expect(results.slice(0, 30).map((result: any) => result.tokenId)).toEqual(keys.map((key) => key.id))
    expect(results.slice(30)).toEqual(unknown.map(() => ({ valid: false, reason: 'NOT_FOUND' })))
    expect(b.app.deps.cache.stats.loads - before.loads).toBe(40)
    expect(b.app.deps.keys.stats.queries - before.queries).toBe(1)
  })

  it('fails every key of a batch as unavailable when the database cannot answer', async () => {
    const pool = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', connectionTimeoutMillis: 1_000 })
    const loader = new KeyLoader(pool)
    try {
      const loads = ['a', 'b', 'c'].map((digest) => loader.load(digest))
      for (const load of loads) await expect(load).rejects.toBeInstanceOf(UnavailableError)
      expect(loader.stats).toEqual({ queries: 1, digests: 3 })
    } finally {
      await pool.end()
    }
  })

  it('never caches a row read before a revoke that another replica committed', async () => {
    const key = await issue(a.operator)
    const digest = digestKey(key.token)
    const key_ = cacheKey(digest)
    const cache = b.app.deps.cache
    // Force the interleaving: B reads the row, then A revokes and B hears of it, then B's read completes.
    const heard = new Promise<void>((resolve) =>
      b.app.deps.changes.on('change', (event) => event.type === 'key' && event.digest === digest && resolve()),
    )
    const staleRead = cache.lookup(key_, async () => {
      const row = (await findKeyRecord(b.app.deps.pool, digest))?.record ?? null
      expect((await a.operator.mutation('token.revoke', { id: key.id })).status).toBe(200)
      await heard
      return row
    })
    expect((await staleRead)?.revoked).toBe(false) // that verify began before the revoke
    const after = await onB.mutation('token.verify', { token: key.token })
    expect(after.body.result.data).toEqual({ valid: false, reason: 'REVOKED' })
  })

  it('caches unknown keys briefly and never lets MALFORMED reach the cache', async () => {
    const cache = b.app.deps.cache
    const before = { ...cache.stats }
    for (let i = 0; i < 20; i++) await onB.mutation('token.verify', { token: 'tk_live_nope' })
    expect(cache.stats.misses).toBe(before.misses)
    expect(cache.stats.loads).toBe(before.loads)
  })
})
